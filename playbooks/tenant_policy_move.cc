#include "playbooks/tenant_policy_move.h"

#include <set>

#include "common/atomic_file.h"
#include "common/subprocess.h"
#include "controlplane/policy_diff.h"
#include "controlplane/policy_document.h"
#include "controlplane/policy_principals.h"
#include "controlplane/tenant_policy.h"

namespace headshift {

namespace {

using json = nlohmann::json;
using ojson = nlohmann::ordered_json;

// The users an owner entry of tagOwners stands for: "hsa@" -> hsa; a group -> its users; a tag -> its
// own owners (tags may own tags). autogroups and anything else own nothing here.
void ResolveOwners(const ojson& policy, const std::string& owner, std::set<std::string>* users,
                   std::set<std::string>* seen) {
  if (!seen->insert(owner).second) return;
  if (PolicyPrincipals::IsUser(owner)) {
    users->insert(PolicyPrincipals::UserName(owner));
  } else if (owner.rfind("group:", 0) == 0) {
    const ojson* g = policy.contains("groups") && policy["groups"].is_object() && policy["groups"].contains(owner)
                         ? &policy["groups"][owner]
                         : nullptr;
    if (g && g->is_array()) {
      for (const auto& m : *g) {
        if (m.is_string()) ResolveOwners(policy, m.get<std::string>(), users, seen);
      }
    }
  } else if (owner.rfind("tag:", 0) == 0) {
    const ojson* t = policy.contains("tagOwners") && policy["tagOwners"].is_object() &&
                             policy["tagOwners"].contains(owner)
                         ? &policy["tagOwners"][owner]
                         : nullptr;
    if (t && t->is_array()) {
      for (const auto& m : *t) {
        if (m.is_string()) ResolveOwners(policy, m.get<std::string>(), users, seen);
      }
    }
  }
}

migrate::TagOwnership OwnershipOf(const ojson& policy) {
  migrate::TagOwnership out;
  if (!policy.contains("tagOwners") || !policy["tagOwners"].is_object()) return out;
  for (auto it = policy["tagOwners"].begin(); it != policy["tagOwners"].end(); ++it) {
    std::set<std::string> users, seen;
    ResolveOwners(policy, it.key(), &users, &seen);
    for (const auto& u : users) out.Add(u, {it.key()});
  }
  return out;
}

bool Unset(const PolicyRecord& r) {
  return !r.set || r.policy.find_first_not_of(" \t\r\n") == std::string::npos;
}

// "not served": the control plane has no policy API (404 from the stand-in or an old headscale).
bool NotServed(const Status& s) { return s.message().find("HTTP 404") != std::string::npos; }

}  // namespace

Status PolicyMovePlan::Refusal(const std::string& tenant, const std::string& from, const std::string& to) const {
  return RefusalStatus(issues, "the ACL policy of " + tenant + " cannot move from cluster " + from + " to " + to);
}

json PolicyMovePlan::ToJson(const std::string& from, const std::string& to) const {
  json j = {{"read", read}};
  if (!read) {
    j["reason"] = unread_reason;
    return j;
  }
  j["owned_tags"] = part.OwnedTags();
  j["source"] = {{"cluster", from}, {"mode", source_mode}, {"set", !Unset(source)}, {"diff", source_diff}};
  j["target"] = {{"cluster", to}, {"mode", target_mode}, {"set", !Unset(target)}, {"diff", target_diff}};
  j["rules"] = part.rules.size();
  json is = json::array();
  for (const auto& i : issues) {
    is.push_back({{"kind", PolicyIssueKindName(i.kind)},
                  {"severity", i.severity == PolicySeverity::kRefuse ? "refuse" : "risk"},
                  {"where", i.where},
                  {"detail", i.detail},
                  {"fix", i.fix}});
  }
  j["issues"] = is;
  return j;
}

StatusOr<PolicyRecord> ReadPolicy(MigrationEnv& env, const std::string& cluster) {
  auto api = env.Control(cluster);
  if (!api.ok()) return api.status();
  auto rec = (*api)->GetPolicy();
  if (!rec.ok()) return rec.status().WithContext("reading the ACL policy of cluster " + cluster);
  return rec;
}

StatusOr<PolicyMovePlan> PlanPolicyMove(MigrationEnv& env, const std::string& tenant, const std::string& from,
                                        const std::string& to) {
  PolicyMovePlan plan;
  auto source = ReadPolicy(env, from);
  auto target = source.ok() || !NotServed(source.status()) ? ReadPolicy(env, to) : source;
  for (const auto* r : {&source, &target}) {
    if (r->ok()) continue;
    if (NotServed(r->status())) {
      plan.unread_reason = r->status().message();
      return plan;  // read == false
    }
    return r->status();
  }
  plan.read = true;
  plan.source = *source;
  plan.target = *target;
  plan.source_mode = env.config.FindCluster(from)->policy_file.empty() ? "database" : "file";
  plan.target_mode = env.config.FindCluster(to)->policy_file.empty() ? "database" : "file";

  auto src = PolicyDocument::Parse(plan.source.policy, "ACL policy of cluster " + from);
  if (!src.ok()) return src.status();
  auto dst = PolicyDocument::Parse(plan.target.policy, "ACL policy of cluster " + to);
  if (!dst.ok()) return dst.status();
  plan.ownership = OwnershipOf(src->json());

  // No policy on the source means every device may reach every other: a target with a policy would
  // grant the tenant only what that policy says.
  if (Unset(plan.source)) {
    if (!Unset(plan.target)) {
      plan.issues.push_back(PolicyIssue{
          PolicyIssueKind::kGenericMissing, PolicySeverity::kRefuse, "policy",
          "cluster " + from + " has no ACL policy (every device may reach every other), cluster " + to +
              " has one: the tenant would keep only what that policy grants it",
          "give cluster " + from + " a policy with the tenant's rules first (e.g. {\"action\":\"accept\",\"src\":[\"" +
              tenant + "@\"],\"dst\":[\"" + tenant + "@:*\"]}), then plan again"});
    }
    return plan;
  }

  TenantPrincipals who;
  who.users = {tenant};
  TenantPolicySplitter splitter(who);
  auto part = splitter.Extract(*src);
  if (!part.ok()) return part.status().WithContext("splitting the ACL policy of cluster " + from);
  plan.part = *part;
  plan.issues = part->issues;
  auto target_issues = splitter.CheckTarget(*part, *dst);
  plan.issues.insert(plan.issues.end(), target_issues.begin(), target_issues.end());
  for (const auto& i : plan.issues) {
    if (i.severity == PolicySeverity::kRefuse) return plan;  // no "after" for a refused split
  }
  auto merged = splitter.MergeInto(*dst, *part);
  if (!merged.ok()) return merged.status();
  auto removed = splitter.RemoveFrom(*src, *part);
  if (!removed.ok()) return removed.status();
  plan.target_diff = PolicyDiff::Lines(*dst, *merged);
  plan.source_diff = PolicyDiff::Lines(*src, *removed);
  plan.target_after = merged->ToJson();
  plan.source_after = removed->ToJson();
  return plan;
}

Status ApplyPolicy(MigrationEnv& env, const std::string& cluster, const PolicyRecord& policy) {
  const ClusterConfig* c = env.config.FindCluster(cluster);
  if (!c) return Status::BadInput("unknown cluster " + cluster);
  const std::string text = policy.set ? policy.policy : "";
  if (c->policy_file.empty()) {
    auto api = env.Control(cluster);
    if (!api.ok()) return api.status();
    auto st = (*api)->SetPolicy(text);
    if (!st.ok()) return st.status().WithContext("setting the ACL policy of cluster " + cluster);
  } else {
    HS_RETURN_IF_ERROR(WriteFileAtomically(c->policy_file, text, 0640));
    auto pr = RunArgv(c->policy_reload_command, env.config.timeouts.reload_command_ms);
    if (!pr.ok()) return pr.status().WithContext("policy_reload_command of cluster " + cluster);
    if (pr->exit_code != 0) {
      return Status::Failed("policy_reload_command of cluster " + cluster + " exited " +
                            std::to_string(pr->exit_code) + ": " + pr->output.substr(0, 500));
    }
  }
  // Read back: the node must now serve this policy (the same JSON value; file mode serves the file).
  auto back = ReadPolicy(env, cluster);
  if (!back.ok()) return back.status();
  auto want = PolicyDocument::Parse(text, "policy written to cluster " + cluster);
  auto got = PolicyDocument::Parse(back->policy, "policy served by cluster " + cluster);
  if (!want.ok()) return want.status();
  if (!got.ok()) return got.status();
  if (!want->SameAs(*got)) {
    return Status::Failed("cluster " + cluster + " serves another ACL policy than the one headshift just wrote",
                          "another writer changed it at the same time; check the node's policy, then resume");
  }
  return Status::Ok();
}

}  // namespace headshift
