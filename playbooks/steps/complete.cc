// complete: split layout: the source rows removed (archived first unless !archive_on_retire);
// shared: the rows already moved, Retire closes the copy record and drops its per-row hashes.
// Journals the RetireReport. After the cut: a failure stops for the operator.
#include "playbooks/migration_run.h"
#include "playbooks/steps/steps.h"

namespace headshift::steps {

namespace {

StatusOr<nlohmann::json> Run(MigrationRun& run) {
  auto r = run.env.mover->Retire(run.ref, run.opts.archive_on_retire);
  if (!r.ok()) return r.status();
  return r->ToJson();
}

}  // namespace

MigrationStep Complete() {
  return MigrationStep{
      .name = "complete",
      .after_cut = true,
      .run = Run,
  };
}

}  // namespace headshift::steps
