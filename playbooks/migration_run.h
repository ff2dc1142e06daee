// MigrationRun: the state of one run of a migration (migrate, resume or rollback) that its steps
// read and write: the journal record (what earlier steps recorded), the rows' MoveRef, the report
// being filled, the tenant lock and the options. Rebuilt from the journal on resume and rollback
// (playbooks/journal_replay.h).
//
// Ownership: refers to the MigrationEnv and the options (both must outlive the run); owns the lock.
// Thread-safety: one thread.
#pragma once

#include <chrono>
#include <memory>

#include "migrate/journal.h"
#include "migrate/reports.h"
#include "migrate/tenant_lock.h"
#include "playbooks/migration_env.h"
#include "playbooks/migration_report.h"
#include "playbooks/tenant_migration.h"

namespace headshift {

using MigrationClock = std::chrono::steady_clock;

inline double MsSince(MigrationClock::time_point t0) {
  return std::chrono::duration<double, std::milli>(MigrationClock::now() - t0).count();
}

struct MigrationRun {
  MigrationRun(MigrationEnv& e, const MigrationOptions& o) : env(e), opts(o) {}

  MigrationEnv& env;
  const MigrationOptions& opts;
  migrate::MigrationRecord rec;  // kept in step with the journal after each step
  migrate::MoveRef ref;
  MigrationReport rep;
  std::unique_ptr<migrate::TenantLock> lock;
  MigrationClock::time_point t0 = MigrationClock::now();
};

}  // namespace headshift
