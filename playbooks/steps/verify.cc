// verify: row counts and order-independent checksums of the tenant's rows on both sides
// (VerifyReport in the journal). Nothing to undo.
#include "playbooks/migration_run.h"
#include "playbooks/steps/steps.h"

namespace headshift::steps {

MigrationStep Verify() {
  MigrationStep s;
  s.name = "verify";
  s.run = [](MigrationRun& run) -> StatusOr<nlohmann::json> {
    auto r = run.env.mover->Verify(run.ref);
    if (!r.ok()) return r.status();
    return r->ToJson();
  };
  return s;
}

}  // namespace headshift::steps
