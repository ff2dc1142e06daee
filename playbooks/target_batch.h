// TargetBatch: runs the moves of a fleet operation (drain, rebalance, apply, multi-tenant migrate) so
// that each target cluster restarts ONCE for all the tenants headed there, instead of once per tenant
// (on headscale >= 0.27 the only way to load rows it did not write is a restart, which drops every
// control connection it holds). Per target, in order of first appearance in the plan:
//
//   1. prepare: each tenant headed there runs up to `policy` (TenantMigration with until=policy: copy,
//      verify, policy; journal state paused; nothing restarted, the devices still on the source), up
//      to `concurrency` at once. A migration an earlier run left paused at `policy`, or a batch's
//      migration whose process died, is adopted instead (no second copy) and resumed at its cut.
//   2. restart: one run of the target's reload command for all of them (batch_restart.h), the target's
//      own devices counted before and waited for after (collateral, in the report); skipped when the
//      target already serves every key.
//   3. cut: each tenant in turn by resuming its migration (target_ready finds its keys served and does
//      not reload; then the cut, catch-up of what changed since its copy, complete).
//   4. late devices: a device that registered on the source after its tenant's copy is copied by that
//      tenant's catch-up, after the restart: a caching target does not serve it. After the cuts the
//      target is checked again (batch_restart.h) and restarted a second time only if such a key is
//      not served (reported with reason late_devices; the device is rejected until then).
//
// A target whose reload does not restart it (no reload_command, or reload_drops_sessions: false) has
// no restart to share: its tenants migrate one by one as before (each reloads it as it needs), as does
// a target with one tenant and nothing to adopt (exactly a single `migrate`).
//
// Failures: after the first failure no new tenant is started (the rest are `pending`); a failed
// prepare rolls that tenant back (its own journal) and the others already prepared still restart and
// cut; a failed restart or cut leaves the remaining prepared migrations paused at `policy` (`paused`
// in the report, with their resume ids). Each tenant keeps its own journal state throughout.
//
// Thread-safety: one TargetBatch per thread; it starts worker threads of its own for the prepares,
// each with its own TenantMigration.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/config.h"
#include "common/status.h"
#include "migrate/journal.h"
#include "playbooks/fleet_report.h"
#include "playbooks/placement.h"

namespace headshift {

struct BatchOptions {
  std::string operation;   // drain | rebalance | move: journaled as details.batch of each migration
  int concurrency = 1;     // prepares (copies) at once; cuts are one at a time
  bool allow_shared = false;
  int64_t reset_rate = -1;  // MigrationOptions::reset_rate
  std::string pacing;       // MigrationOptions::pacing
  std::function<void(const std::string& line)> progress;  // one human line per event
};

class TargetBatch {
 public:
  static StatusOr<std::unique_ptr<TargetBatch>> Open(const Config& config);
  ~TargetBatch();

  // Runs `moves`; `adopt` maps a tenant of `moves` to its migration paused at `policy` (continued
  // instead of started). Fills rep.completed/failed/pending/paused/target_restarts/target_restart_detail.
  void Run(const std::vector<PlannedMove>& moves, const std::map<std::string, std::string>& adopt,
           const BatchOptions& opts, FleetReport& rep);

  // The dry run: rep.target_restarts and rep.target_restart_detail for `moves` (batch_plan.h).
  void Plan(const std::vector<PlannedMove>& moves, FleetReport& rep);

  // Migrations paused at `policy` (journal state paused, paused_after policy), or a batch's migration
  // whose process died (state still running, at any step), newest first: what a rerun adopts and
  // resumes where it stopped (resuming one that another process still runs is refused by its tenant
  // lock). Only those a batch started (details.batch) when `batch_only`.
  StatusOr<std::vector<migrate::MigrationRecord>> PausedAtPolicy(bool batch_only);

  struct Impl;

 private:
  explicit TargetBatch(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace headshift
