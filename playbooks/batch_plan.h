// Batch plan: what a batch (drain, rebalance, apply, multi-tenant migrate) costs each target cluster in
// restarts, for the dry runs. Per target: how many restarts the batch makes (1 when its reload restarts
// it and it caches nodes, else 0), the target's own devices online now that the restart drops, the
// target's measured absorb rate (devices back per second) read from the journal, and from both the
// expected time those devices are without control: dropped / absorb rate. No measurement → unknown
// (null, with the reason), never a made-up figure.
//
// The absorb rate of a cluster, newest first: the reconnected / reconnect_ms of a restart of it that
// dropped devices (target_ready's `target_restart`, or a batch's `batch_restart` on the migration row):
// the event the plan predicts; if none was journaled, `pacing.absorb_per_s` of a reset_sessions step of
// a migration onto it (playbooks/steps/reset_sessions.cc): paced waves are absorbed faster per device
// than a whole node redialing at once, so that figure is a lower bound of the downtime, and said so.
//
// Thread-safety: functions; TargetRestartPlan uses the env from the calling thread only.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "migrate/journal.h"
#include "playbooks/migration_env.h"
#include "playbooks/placement.h"

namespace headshift {

struct AbsorbRate {
  std::optional<double> per_s;  // devices back per second; nullopt = never measured onto the cluster
  std::string source;           // where the figure comes from (journal step and migration), or why unknown
};

// From journal records (newest first, as Journal::List returns them).
AbsorbRate MeasuredAbsorbRate(const std::vector<migrate::MigrationRecord>& newest_first, const std::string& cluster);

// The moves grouped by target, in order of first appearance.
std::vector<std::pair<std::string, std::vector<PlannedMove>>> GroupByTarget(const std::vector<PlannedMove>& moves);

// Restarts the batch makes on `target` (its config): 1 if its reload restarts it and it caches nodes.
int ExpectedRestarts(const ClusterConfig& target);

// Per target of `moves`: {"tenants", "restarts", "devices_dropped" (null if unknown), "absorb_per_s",
// "absorb_source", "expected_control_downtime_s" (null if unknown), "unknown_reason"?}. `restarts`
// gets the count per target.
nlohmann::json TargetRestartPlan(MigrationEnv& env, const std::vector<PlannedMove>& moves,
                                 std::map<std::string, int>& restarts);

}  // namespace headshift
