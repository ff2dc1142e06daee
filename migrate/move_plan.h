// MovePlan: the read-only picture of moving one tenant — rows per table, the ids that would be
// remapped on the target, and every conflict that forbids the move. Produced by Planner (plan /
// preflight); nothing is written to any database while building it.
//
// Conflict kinds (stable strings, for automation):
//   unknown_cluster, same_cluster, target_cordoned, tenant_missing, tenant_on_target, schema_drift,
//   schema_profile, unclassified_table, dangling_reference, missing_reference, cluster_mismatch,
//   unique_index (a target unique index would be violated), collision (a unique_in_cluster value —
//   tailnet IP, given_name, node_key, machine_key, pre-auth key prefix — is already used on the target),
//   tag_shared, tag_mixed, tag_owner_undecided, tagged_on_target (a tagged device whose owner is not
//   the tenant alone, or that is already on the target: migrate/tagged_devices.h).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/status.h"
#include "migrate/row_sql.h"

namespace headshift::migrate {

struct Conflict {
  std::string kind;
  std::string table;   // "" when not about one table
  std::string column;  // "" when not about one column
  std::string message;  // what is wrong, naming values and ids
  std::string fix;      // what the operator can do
  std::vector<std::string> values;  // offending values (all of them)

  nlohmann::json ToJson() const;
};

struct TablePlan {
  std::string table;
  int64_t rows = 0;
  int64_t id_remaps = 0;  // source ids taken on the target (they get new ids)
  IdMap remap_sample;     // up to 5 proposed old->new pairs (the copy allocates the real ones)
};

struct MovePlan {
  std::string tenant;
  std::string from;
  std::string to;
  std::string layout;          // shared | split
  std::string profile;         // schema profile name
  std::string cluster_column;  // "" = none (stock headscale, split layout: the database is the cluster)
  std::string cluster_type;    // text / bigint / ... ("" without a cluster column)
  std::vector<TablePlan> tables;  // foreign-key order
  std::vector<Conflict> conflicts;
  // What the move changes for the tenant without forbidding it, e.g. devices whose node id is taken on
  // the target and that get a new one (tailscale's StableNodeID is headscale's nodes.id).
  std::vector<std::string> risks;

  bool ok() const { return conflicts.empty(); }
  int64_t TotalRows() const;
  // OK, or Refused listing every conflict (one per line) with their fixes.
  Status ToStatus() const;
  nlohmann::json ToJson() const;
  std::string ToText() const;
};

// "a, b, c, d, e and 7 more": the values a conflict message names.
std::string SampleValues(const std::vector<std::string>& values);
// The first 1000 values: what Conflict::values keeps.
std::vector<std::string> CapValues(std::vector<std::string> values);

// Preflight returns the same picture.
using PreflightReport = MovePlan;

}  // namespace headshift::migrate
