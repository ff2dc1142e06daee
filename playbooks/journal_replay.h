// Journal replay: rebuilds a run's report and MoveRef from the journal record of migration `id`,
// so resume, rollback and status continue from what earlier processes recorded (each step's
// details keys, see the step files under playbooks/steps/).
//
// Thread-safety: one thread (the run's).
#pragma once

#include <string>

#include "common/status.h"
#include "playbooks/migration_run.h"

namespace headshift {

// Reads migration `id` from the journal into run.rec, run.ref and run.rep. BadInput if unknown.
Status LoadRunFromJournal(const std::string& id, MigrationRun& run);

// Fills run.ref and run.rep from run.rec (no database access).
void FillReportFromJournal(MigrationRun& run);

}  // namespace headshift
