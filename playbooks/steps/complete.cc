// complete: split layout: the source rows removed (archived first unless !archive_on_retire);
// shared: the rows already moved, Retire closes the copy record and drops its per-row hashes.
// Then no trace of the tenant is left on the source: its stale in-memory entries are deleted through
// the source's API once offline there (ghost_nodes.h; one still online is a straggler: needs the
// operator), and its part of the ACL policy leaves the source's policy (tenant_policy_move.h).
// Journals the RetireReport, ghosts and the source's policy diff. After the cut: a failure stops for
// the operator; every part is idempotent, so `resume` finishes it.
#include <set>

#include "playbooks/ghost_nodes.h"
#include "playbooks/journal_details.h"
#include "playbooks/migration_run.h"
#include "playbooks/steps/steps.h"
#include "playbooks/tenant_policy_move.h"

namespace headshift::steps {

namespace {

using json = nlohmann::json;

StatusOr<json> Run(MigrationRun& run) {
  const std::string &tenant = run.ref.tenant, &from = run.ref.from, &to = run.ref.to;
  auto r = run.env.mover->Retire(run.ref, run.opts.archive_on_retire);
  if (!r.ok()) return r.status();
  json out = r->ToJson();

  auto moved = run.env.mover->TenantNodes(tenant, to);
  if (!moved.ok()) return moved.status();
  std::set<std::string> keys;
  for (const auto& n : *moved) keys.insert(n.node_key);
  // Devices the target serves online now are not connected to the source, whatever its grace says.
  std::set<std::string> on_target = OnlineNodeKeys(run.env, to, tenant, *moved);
  auto ghosts = RemoveGhosts(run.env, from, keys, on_target,
                             std::chrono::milliseconds(run.env.config.timeouts.reconnect_ms));
  if (!ghosts.ok()) return ghosts.status();
  json g = ghosts->ToJson();
  g["cluster"] = from;
  run.rep.ghosts = g;
  out["ghosts"] = g;

  if (StepDetails(run.rec, "policy").value("policy", json::object()).value("read", false)) {
    auto plan = PlanPolicyMove(run.env, tenant, from, to);
    if (!plan.ok()) return plan.status();
    HS_RETURN_IF_ERROR(plan->Refusal(tenant, from, to));
    if (plan->changes_source()) HS_RETURN_IF_ERROR(ApplyPolicy(run.env, from, PolicyRecord{true, plan->source_after, ""}));
    out["source_policy_diff"] = plan->source_diff;
  }
  if (!ghosts->stragglers.empty()) {
    std::string names;
    for (const auto& s : ghosts->stragglers) names += (names.empty() ? "" : ", ") + s;
    return Status::NeedsOperator("device(s) of " + tenant + " still online on cluster " + from +
                                     " after the move: " + names,
                                 "they are still connected to the old node; reset their sessions (`headshift "
                                 "sessions kill --tenant " + tenant + " ...`), then `headshift resume`");
  }
  return out;
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
