// policy: the tenant's part of the ACL policy (its rules, groups, tags, hosts, auto-approvers, ssh
// rules; playbooks/tenant_policy_move.h) is added to the target's policy before the target is made to
// serve the rows, and read back. The previous target policy is journaled when the step starts, so a
// rollback restores it exactly; the source keeps its policy until `complete`. Also journals the source's
// compiled packet filter (debug_url), the baseline the `tailnet` step compares the target against.
// A node without a policy API (stand-in, old headscale) is journaled as unread; nothing is written.
#include <spdlog/spdlog.h>

#include "controlplane/node_facts.h"
#include "playbooks/journal_details.h"
#include "playbooks/migration_run.h"
#include "playbooks/steps/steps.h"
#include "playbooks/tenant_policy_move.h"

namespace headshift::steps {

namespace {

using json = nlohmann::json;

json RecordJson(const PolicyRecord& r) { return {{"set", r.set}, {"policy", r.policy}}; }
PolicyRecord RecordFrom(const json& j) {
  PolicyRecord r;
  r.set = j.value("set", false);
  r.policy = j.value("policy", "");
  return r;
}

// The step's details as journaled now: StartStep writes them to the journal only, and a rollback
// after this step failed half-way must still find the previous policy.
json JournaledDetails(MigrationRun& run) {
  auto rec = run.env.mover->journal().Get(run.rec.id);
  return rec.ok() ? StepDetails(*rec, "policy") : StepDetails(run.rec, "policy");
}

// Before anything is written: the target's policy as it is (kept from an earlier start of this step).
json StartDetails(MigrationRun& run) {
  json earlier = StepDetails(run.rec, "policy");
  if (earlier.contains("previous_target")) return {{"previous_target", earlier["previous_target"]}};
  auto rec = ReadPolicy(run.env, run.ref.to);
  if (!rec.ok()) return {{"previous_target_error", rec.status().message()}};
  return {{"previous_target", RecordJson(*rec)}};
}

StatusOr<json> Run(MigrationRun& run) {
  const std::string &tenant = run.ref.tenant, &from = run.ref.from, &to = run.ref.to;
  json started = JournaledDetails(run);
  auto plan = PlanPolicyMove(run.env, tenant, from, to);
  if (!plan.ok()) return plan.status();
  run.rep.policy = plan->ToJson(from, to);
  json out = {{"policy", run.rep.policy}};
  if (!plan->read) {
    run.rep.warnings.push_back("the ACL policy was not moved: " + plan->unread_reason);
    return out;
  }
  if (!started.contains("previous_target")) {
    return Status::Failed("could not read the ACL policy of cluster " + to + " before changing it: " +
                          started.value("previous_target_error", std::string("unknown error")));
  }
  HS_RETURN_IF_ERROR(plan->Refusal(tenant, from, to));
  if (plan->changes_target()) {
    PolicyRecord merged{true, plan->target_after, ""};
    HS_RETURN_IF_ERROR(ApplyPolicy(run.env, to, merged));
    spdlog::info("policy: cluster {} now carries the policy of {} ({} line(s) changed)", to, tenant,
                 plan->target_diff.size());
  }
  out["applied"] = plan->changes_target();
  // The source's compiled filter before the cut: what the tenant's devices may send each other there.
  const ClusterConfig* src = run.env.config.FindCluster(from);
  if (!src->debug_url.empty()) {
    NodeFactsReader reader(from, src->control_url, src->debug_url, run.env.config.timeouts.http_ms);
    auto filter = reader.FilterJson();
    if (filter.ok()) out["source_filter"] = *filter;
    else out["source_filter_error"] = filter.status().message();
  }
  return out;
}

// Rollback: the target's policy as it was before this step (no policy stays no policy).
Status Undo(MigrationRun& run, json& details) {
  json started = JournaledDetails(run);
  if (!started.contains("previous_target")) return Status::Ok();  // nothing was written
  PolicyRecord prev = RecordFrom(started["previous_target"]);
  auto now = ReadPolicy(run.env, run.ref.to);
  if (now.ok() && now->set == prev.set && now->policy == prev.policy) return Status::Ok();
  HS_RETURN_IF_ERROR(ApplyPolicy(run.env, run.ref.to, prev));
  details["policy_restored"] = run.ref.to;
  return Status::Ok();
}

}  // namespace

MigrationStep Policy() {
  return MigrationStep{
      .name = "policy",
      .start_details = StartDetails,
      .run = Run,
      .undo = Undo,
  };
}

}  // namespace headshift::steps
