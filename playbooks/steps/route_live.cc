// route_live: the proxy serves the tenant's new route (timeouts.route_live_ms). Journals nothing
// more than its time. A cut step. Undone with switch_route (which waits for the old route live).
#include "playbooks/migration_run.h"
#include "playbooks/steps/steps.h"

namespace headshift::steps {

namespace {

StatusOr<nlohmann::json> Run(MigrationRun& run) {
  HS_RETURN_IF_ERROR(run.env.route->WaitLive(run.ref.tenant, run.ref.to,
                                             std::chrono::milliseconds(run.env.config.timeouts.route_live_ms)));
  return nlohmann::json::object();
}

}  // namespace

MigrationStep RouteLive() {
  return MigrationStep{
      .name = "route_live",
      .cut = true,
      .run = Run,
  };
}

}  // namespace headshift::steps
