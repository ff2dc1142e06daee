// FleetOps: operations over many tenants — drain a cluster, rebalance the fleet, move a list of
// tenants (plain, canary-then-batches, or `headshift migrate T1 T2 … --to C`), and run playbooks
// (`headshift apply`). Each tenant move is one TenantMigration (its own journal entry, lock and
// rollback); FleetOps plans the moves (playbooks/placement.h) and runs them through TargetBatch
// (playbooks/target_batch.h): per target, every tenant copied up to `policy`, ONE restart of the
// target, then the cuts; new moves stop after the first failure and the report says what is pending
// or paused (with resume ids). A rerun continues the migrations a stopped run left paused at `policy`.
// The dry runs report per target the restarts and the expected time without control of the target's
// own devices (playbooks/batch_plan.h). Drain, cordon and rebalance live in fleet_ops.cc, playbook
// runs in fleet_apply.cc.
//
// Thread-safety: one FleetOps per thread; it starts worker threads of its own, each with its own
// TenantMigration.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/config.h"
#include "common/status.h"
#include "playbooks/fleet_report.h"
#include "playbooks/placement.h"

namespace headshift {

struct FleetOptions {
  int concurrency = 1;
  bool dry_run = false;
  bool allow_shared = false;
  int64_t reset_rate = -1;  // MigrationOptions::reset_rate (-1: sessions.reset_rate)
  std::string pacing;       // MigrationOptions::pacing (empty: sessions.pacing)
  std::function<void(const std::string& line)> progress;  // one human line per event
};

class FleetOps {
 public:
  static StatusOr<std::unique_ptr<FleetOps>> Open(const Config& config);
  ~FleetOps();

  // Drain, Rebalance and MoveTenants refuse (BadInput, before any change) to move tenants when
  // proxy.kind is fleet: each move pauses for a cut only the fleet's playbook can run (see
  // playbooks/ansible). Their dry runs (the plans) work.
  // Cordons `cluster` (durably, first), plans the moves off it (largest tenant first, to the least
  // loaded eligible cluster, or within `to`) and runs them. dry_run: the plan only, no cordon.
  StatusOr<FleetReport> Drain(const std::string& cluster, const std::vector<std::string>& to, const FleetOptions& opts);
  // Marks `cluster` as receiving no new tenants (durable, like drain's first step), for playbooks that
  // move its tenants themselves (playbooks/ansible/drain_cluster.yml). Idempotent.
  Status Cordon(const std::string& cluster, const std::string& reason);
  Status Uncordon(const std::string& cluster);
  // The fewest moves that bring every cluster within the configured tolerance of the mean.
  StatusOr<FleetReport> Rebalance(int max_moves, const FleetOptions& opts);
  // Moves `tenants` to `to`: the first `canary` one at a time, then the rest `batch` at a time
  // (canary = 0: all with opts.concurrency). Tenants already on `to` are skipped.
  StatusOr<FleetReport> MoveTenants(const std::vector<std::string>& tenants, const std::string& to, int canary,
                                    int batch, const FleetOptions& opts);
  // `headshift migrate T1 T2 … --to C`: like MoveTenants (canary 0) but strict: refuses before any
  // change, naming every problem at once — BadInput for an unknown tenant, a tenant listed twice or one
  // already on `to`; Refused for a tenant with an unfinished migration elsewhere (its resume/rollback
  // named). A tenant paused at `policy` on its way to `to` is continued. Report operation "migrate".
  StatusOr<FleetReport> MigrateTenants(const std::vector<std::string>& tenants, const std::string& to,
                                       const FleetOptions& opts);
  // Runs a playbook from its first step, or continues run `resume_id`; `confirm` passes the pause
  // the run stopped at. Stops at the first failing step (Failed) or at a pause (NeedsOperator).
  StatusOr<PlaybookRunReport> Apply(const std::string& path, const FleetOptions& opts, const std::string& resume_id,
                                    bool confirm);

  struct Impl;

 private:
  explicit FleetOps(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace headshift
