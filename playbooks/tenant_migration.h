// TenantMigration: the per-tenant migration state machine (DESIGN.md), composing migrate/ (rows,
// journal, lock), proxycfg/ (route), dataplane/ (sessions) and controlplane/ (headscale API):
//
//   preflight → copy → verify → target_ready → snapshot_sessions → switch_route → route_live
//   → reset_sessions → reconnected → catch_up → complete
//
// Each step is one file under playbooks/steps/ (a MigrationStep, playbooks/migration_step.h); the
// order is the table in playbooks/steps/step_table.cc; playbooks/step_runner.h runs them (journal,
// lock check, pause, resume, crash points, rollback). This class only validates, runs preflight,
// creates the journal and hands the run to the runner.
//
// Every step is journaled when it starts and when it finishes (migrate::Journal), with what later
// steps and `resume`/`rollback` need (the session snapshot, the route before the flip, the devices
// online before the cut). Every step is idempotent, so Resume() after a crash at any point converges.
// One migration per tenant at a time (migrate::TenantLock, held for the whole run).
//
// Refusals come before the first write: bad input (unknown tenant or cluster, same source and
// target) → BadInput (2); conflicts and risks found by preflight → Refused (3), with no journal row
// written. A failure after the first write rolls back automatically → Failed (1); if the rollback
// itself fails → NeedsOperator (4).
//
// Fault injection (tests): HEADSHIFT_CRASH_AFTER=<step> kills the process with SIGKILL right after
// that step is journaled as done.
//
// Thread-safety: one TenantMigration per thread (it owns connections). Several may run in parallel
// for different tenants (drain --concurrency).
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "common/config.h"
#include "common/status.h"
#include "playbooks/migration_report.h"

namespace headshift {

struct MigrationOptions {
  bool allow_shared = false;       // also reset client addresses another tenant uses
  // Resets per second on each session host when the sessions are reset (0 = all at once; -1 = the
  // config's sessions.reset_rate).
  int64_t reset_rate = -1;
  // How the reset is paced (playbooks/paced_reset.h): "adaptive", "fixed", or "" = sessions.pacing.
  std::string pacing;
  bool archive_on_retire = true;   // split: keep the retired source rows in an archive schema
  // Refuse collateral from the target's reload: when reloading the target would restart it
  // (clusters[].reload_drops_sessions) preflight refuses (exit 3) if the target caches nodes, and
  // target_ready stops (rolled back, exit 1) instead of reloading it otherwise. Kept in the journal,
  // so `resume` honours it too.
  bool no_target_restart = false;
  // Stop after this step (journal state `paused`, exit 0); `resume` continues. Empty = run to the end.
  // With proxy.kind fleet a migration always pauses before the cut (after target_ready).
  std::string until;
  // resume only: continue at this step, recording the cut steps before it (snapshot_sessions,
  // switch_route, route_live, reset_sessions) as done outside headshift (a fleet playbook ran them on
  // every proxy host). No other step can be skipped (BadInput). A step already done: ignored.
  std::string from;
  // Set by a fleet batch (playbooks/target_batch.h: "drain", "rebalance", "move"): journaled with the
  // migration (details.batch), so a rerun of the batch finds the migrations it paused at `policy`.
  std::string batch;
  // Called when a step starts (done=false) and ends (done=true, with its elapsed time).
  std::function<void(const std::string& tenant, const std::string& step, bool done, double ms)> progress;
  // One line of detail within a step (e.g. each wave of a paced reset); unset: logged at info level.
  std::function<void(const std::string& line)> detail;
};

struct MigrationOutcome {
  Status status;          // OK, or why it stopped (its code is the exit code)
  MigrationReport report; // filled as far as the run got
};

class TenantMigration {
 public:
  // BadInput for config the modules cannot use (missing secrets, bad proxy settings).
  static StatusOr<std::unique_ptr<TenantMigration>> Open(const Config& config);
  ~TenantMigration();

  // Everything a migration would do, changing nothing: rows per table, conflicts, route before and
  // after, the sessions that would be reset per host, shared addresses, risks.
  MigrationOutcome Plan(const std::string& tenant, const std::string& to, const MigrationOptions& opts);
  // The whole workflow.
  MigrationOutcome Migrate(const std::string& tenant, const std::string& to, const MigrationOptions& opts);
  // Continues a migration from its first unfinished step (or opts.from, see there).
  MigrationOutcome Resume(const std::string& id, const MigrationOptions& opts);
  // Undoes a migration that is not complete: rows back, route restored, sessions reset again if
  // they had moved.
  MigrationOutcome Rollback(const std::string& id, const MigrationOptions& opts);

  struct Impl;

 private:
  explicit TenantMigration(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace headshift
