// StepRunner: runs a migration's steps (playbooks/migration_step.h) in the order of the step table
// (playbooks/steps/step_table.cc). It owns everything around a step, so a step only does its work:
//
//   - journaling: each step is journaled when it starts (with its start_details) and when it ends
//     (done with its details and `ms`, or failed with `error`); the in-memory record is refreshed
//     after each step, so later steps read earlier steps' details;
//   - the tenant-lock check before each step and before a rollback;
//   - pause: opts.until stops after that step (journal state `paused`, exit 0); with proxy.kind
//     fleet the run pauses before the cut;
//   - resume: continue at the first unfinished step; `--from` records the cut steps before it as
//     done outside headshift;
//   - crash points: HEADSHIFT_CRASH_AFTER=<step> kills the process right after <step> is journaled
//     done (tests);
//   - failures: a step before the cut fails → rollback (exit 1, or 4 if the rollback fails); a step
//     after the cut fails → needs_operator (exit 4);
//   - rollback: each started step's undo, in reverse order (see MigrationStep::undo_first/undo_after).
//
// Thread-safety: a StepRunner is immutable; each MigrationRun is used by one thread.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/status.h"
#include "playbooks/migration_run.h"
#include "playbooks/migration_step.h"

namespace headshift {

class StepRunner {
 public:
  // REQUIRES: `steps` outlives the runner (the step table is a static).
  explicit StepRunner(const std::vector<MigrationStep>& steps) : steps_(steps) {}

  // Journals a before_journal step (preflight) that ran before the journal existed: started and
  // done with `details`. Its crash point follows.
  Status RecordBeforeJournal(MigrationRun& run, const std::string& step, const nlohmann::json& details);

  // Runs the steps from index `first` on (a before_journal step is passed over).
  Status RunFrom(MigrationRun& run, size_t first);

  // Resumes run (loaded from the journal and locked): from the first unfinished step, or from
  // run.opts.from (recording the cut steps before it as external; BadInput if a non-cut step would
  // be skipped).
  Status Resume(MigrationRun& run);

  // Undoes every started step (rows back, route restored, sessions reset again if they had moved).
  // NeedsOperator if an undo fails.
  Status Rollback(MigrationRun& run, const std::string& reason);

  // Takes the tenant's migration lock for `run` (Refused naming the holder if another runs).
  Status TakeLock(MigrationRun& run);

  // The index of `step` in the table (size() if unknown).
  size_t IndexOf(const std::string& step) const;

  // The steps with an undo, in the order Rollback undoes them (each only if it started): reverse
  // step order, a step with undo_after right after that step, undo_first ones before all others.
  std::vector<const MigrationStep*> UndoOrder(const MigrationRun& run) const;

 private:
  Status RunStep(MigrationRun& run, const MigrationStep& step);
  Status CheckLock(MigrationRun& run, const std::string& next);
  Status Pause(MigrationRun& run, const std::string& after, const std::string& next);
  Status SkipExternal(MigrationRun& run, size_t& first, size_t target);

  const std::vector<MigrationStep>& steps_;
};

}  // namespace headshift
