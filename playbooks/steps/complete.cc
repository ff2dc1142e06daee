// complete: split layout: the source rows removed (archived first unless !archive_on_retire);
// shared: the rows already moved, Retire closes the copy record and drops its per-row hashes.
// Journals the RetireReport. After the cut: a failure stops for the operator.
#include "playbooks/migration_run.h"
#include "playbooks/steps/steps.h"

namespace headshift::steps {

MigrationStep Complete() {
  MigrationStep s;
  s.name = "complete";
  s.after_cut = true;
  s.run = [](MigrationRun& run) -> StatusOr<nlohmann::json> {
    auto r = run.env.mover->Retire(run.ref, run.opts.archive_on_retire);
    if (!r.ok()) return r.status();
    return r->ToJson();
  };
  return s;
}

}  // namespace headshift::steps
