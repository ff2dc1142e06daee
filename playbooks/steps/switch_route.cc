// switch_route: the proxy points the tenant at the target. Journals the route before the flip
// when it starts (`before`, kept from an earlier attempt that crashed after flipping) and the
// RouteChange when done (`change`). A cut step.
// Undo: the route restored and proven live on the source — unless the cut was a fleet's (proxy.kind
// fleet or recorded external): then its proxy hosts restore it (playbooks/ansible
// rollback_tenant.yml, before this rollback) and the rollback journals route: external.
#include "playbooks/journal_details.h"
#include "playbooks/migration_run.h"
#include "playbooks/steps/steps.h"

namespace headshift::steps {

namespace {

using json = nlohmann::json;

// The RouteChange that undoes the flip, built from what switch_route recorded before writing.
RouteChange RestoreChangeFrom(const MigrationRun& run, const json& details) {
  RouteChange c;
  c.tenant = run.ref.tenant;
  c.new_cluster = run.ref.to;
  c.new_backend = run.env.config.FindCluster(run.ref.to)->backend;
  c.changed = true;
  const json& b = details["before"];
  if (b.is_object() && b.contains("backend")) c.previous_backend = b["backend"].get<std::string>();
  if (b.is_object() && b.contains("cluster_id") && !b["cluster_id"].get<std::string>().empty()) {
    c.previous_cluster = b["cluster_id"].get<std::string>();
  }
  return c;
}

json StartDetails(MigrationRun& run) {
  json before = StepDetails(run.rec, "switch_route").value("before", json());
  if (before.is_null() || before.empty()) {
    before = json::object();
    if (auto r = run.env.route->Get(run.ref.tenant); r.ok() && r->has_value()) before = (*r)->ToJson();
  }
  return {{"before", before}};
}

StatusOr<json> Run(MigrationRun& run) {
  // A crashed earlier attempt may already have flipped the route: keep the route it found.
  json earlier = StepDetails(run.rec, "switch_route");
  auto change = run.env.route->Set(run.ref.tenant, run.ref.to);
  if (!change.ok()) return change.status();
  json cj = change->ToJson();
  if (!change->changed && earlier.contains("before")) cj = RestoreChangeFrom(run, earlier).ToJson();
  run.rep.route_after = run.ref.to;
  return json{{"change", cj}};
}

Status Undo(MigrationRun& run, json& details) {
  if (!run.env.route || StepExternal(run.rec, "switch_route")) {
    details["route"] = "external";
    run.rep.warnings.push_back("the route and sessions were changed on the proxy hosts (fleet): restore them there "
                               "(playbooks/ansible/rollback_tenant.yml does, before this rollback)");
    return Status::Ok();
  }
  json sw = StepDetails(run.rec, "switch_route");
  RouteChange change;
  if (sw.contains("change")) {
    auto c = RouteChange::FromJson(sw["change"]);
    if (!c.ok()) return c.status();
    change = *c;
    if (!change.changed && sw.contains("before")) change = RestoreChangeFrom(run, sw);
  } else {
    change = RestoreChangeFrom(run, sw);
  }
  HS_RETURN_IF_ERROR(run.env.route->Restore(change));
  if (change.previous_cluster) {
    HS_RETURN_IF_ERROR(run.env.route->WaitLive(run.ref.tenant, *change.previous_cluster,
                                               std::chrono::milliseconds(run.env.config.timeouts.route_live_ms)));
  }
  details["route"] = "restored";
  return Status::Ok();
}

}  // namespace

MigrationStep SwitchRoute() {
  return MigrationStep{
      .name = "switch_route",
      .cut = true,
      .start_details = StartDetails,
      .run = Run,
      .undo = Undo,
  };
}

}  // namespace headshift::steps
