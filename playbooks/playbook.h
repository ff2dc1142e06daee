// Playbook: a YAML list of steps that `headshift apply` runs in order, stopping on the first
// failure, resumable by its run id. Parsed strictly (unknown keys, wrong types, unknown clusters
// are refused with the line/column) before anything runs.
//
//   name: drain-before-upgrade
//   steps:
//     - drain: {cluster: "3", to: ["4"], concurrency: 2}
//     - pause: {message: "upgrade headscale on node 3, then confirm"}
//     - uncordon: {cluster: "3"}
//     - migrate: {tenants: [hsa, hsb], to: "4"}
//     - canary: {tenants: [t1, t2, t3, t4], to: "4", canary: 1, batch: 2}
//     - rebalance: {max_moves: 3}
#pragma once

#include <string>
#include <vector>

#include "common/config.h"
#include "common/status.h"

namespace headshift {

struct PlaybookStep {
  enum class Kind { kMigrate, kDrain, kUncordon, kRebalance, kPause, kCanary };
  Kind kind = Kind::kMigrate;
  std::vector<std::string> tenants;  // migrate, canary
  std::string to;                    // migrate, canary: target cluster
  std::string cluster;               // drain, uncordon
  std::vector<std::string> drain_to; // drain: allowed targets
  int concurrency = 1;               // drain, migrate
  int max_moves = 0;                 // rebalance (0 = unlimited)
  int canary = 1;                    // canary: tenants moved alone first
  int batch = 1;                     // canary: then this many at a time
  std::string message;               // pause
  bool allow_shared = false;         // migrate, canary, drain
  std::string Describe() const;      // one line, for plans and progress
};

const char* PlaybookStepKindName(PlaybookStep::Kind k);

struct Playbook {
  std::string name;
  std::string path;
  std::string digest;  // hash of the file contents: a resumed run refuses an edited playbook
  std::vector<PlaybookStep> steps;
};

// Parses and validates against `config` (clusters must exist).
StatusOr<Playbook> ParsePlaybook(const std::string& yaml_text, const std::string& origin, const Config& config);
StatusOr<Playbook> LoadPlaybook(const std::string& path, const Config& config);

}  // namespace headshift
