// verify: row counts and order-independent checksums of the tenant's rows on both sides
// (VerifyReport in the journal). Nothing to undo.
#include "playbooks/migration_run.h"
#include "playbooks/steps/steps.h"

namespace headshift::steps {

namespace {

StatusOr<nlohmann::json> Run(MigrationRun& run) {
  auto r = run.env.mover->Verify(run.ref);
  if (!r.ok()) return r.status();
  return r->ToJson();
}

}  // namespace

MigrationStep Verify() {
  return MigrationStep{
      .name = "verify",
      .run = Run,
  };
}

}  // namespace headshift::steps
