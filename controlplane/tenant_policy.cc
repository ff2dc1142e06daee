#include "controlplane/tenant_policy.h"

#include <set>

namespace headshift {
namespace {

using Json = nlohmann::ordered_json;

// A rule section and the fields of a rule that hold principals; `dst_has_ports` for acls' ALIAS:PORTS.
struct RuleSection {
  const char* name;
  std::vector<const char*> fields;
  bool dst_has_ports;
};
const std::vector<RuleSection>& RuleSections() {
  static const std::vector<RuleSection> kSections = {
      {"acls", {"src", "dst"}, true},
      {"grants", {"src", "dst", "via"}, false},
      {"ssh", {"src", "dst"}, false},
      {"nodeAttrs", {"target"}, false},
  };
  return kSections;
}

struct RuleVerdict {
  AliasOwner owner = AliasOwner::kNeutral;
  std::set<std::string> hosts;  // host names of the policy the rule uses
};

StatusOr<RuleVerdict> JudgeRule(const PolicyPrincipals& pp, const Json& policy, const RuleSection& s,
                                const Json& rule, const std::string& where) {
  if (!rule.is_object()) return Status::BadInput("policy " + where + " is not an object");
  RuleVerdict v;
  const Json* hosts = policy.contains("hosts") && policy["hosts"].is_object() ? &policy["hosts"] : nullptr;
  for (const char* field : s.fields) {
    if (!rule.contains(field)) continue;
    const Json& list = rule[field];
    if (!list.is_array()) return Status::BadInput("policy " + where + "." + field + " is not an array");
    for (const auto& e : list) {
      if (!e.is_string()) return Status::BadInput("policy " + where + "." + field + " has a non-string entry");
      std::string alias = e.get<std::string>();
      bool is_dst_with_ports = s.dst_has_ports && std::string(field) == "dst";
      if (is_dst_with_ports) alias = PolicyPrincipals::DestinationAlias(alias);
      v.owner = CombineOwners(v.owner, pp.Classify(alias));
      if (hosts && PolicyPrincipals::IsHost(alias) && hosts->contains(alias)) v.hosts.insert(alias);
    }
  }
  return v;
}

const Json& Section(const Json& policy, const char* name) {
  static const Json kEmpty = Json::object();
  return policy.contains(name) ? policy[name] : kEmpty;
}

bool ContainsSame(const Json& array, const Json& value) {
  if (!array.is_array()) return false;
  for (const auto& e : array) {
    if (SameJsonValue(e, value)) return true;
  }
  return false;
}

// Conflicts of one named section ("groups", "tagOwners", "hosts") of the part with the target.
void CheckNamed(const char* section, const Json& part_entries, const Json& target, std::vector<PolicyIssue>* out) {
  const Json& t = Section(target, section);
  for (auto it = part_entries.begin(); it != part_entries.end(); ++it) {
    if (!t.is_object() || !t.contains(it.key())) continue;
    if (SameJsonValue(t[it.key()], it.value())) continue;
    out->push_back({PolicyIssueKind::kConflict, PolicySeverity::kRefuse, std::string(section) + "." + it.key(),
                    "the target defines it as " + t[it.key()].dump() + ", the tenant's is " + it.value().dump(),
                    "rename it in one of the two policies, or make both definitions the same"});
  }
}

void AddNamed(const char* section, const Json& entries, Json* doc) {
  if (entries.empty()) return;
  Json& s = (*doc)[section];
  if (!s.is_object()) s = Json::object();
  for (auto it = entries.begin(); it != entries.end(); ++it) {
    if (!s.contains(it.key())) s[it.key()] = it.value();
  }
}

void AddApprovers(Json* list, const Json& approvers) {
  if (!list->is_array()) *list = Json::array();
  for (const auto& a : approvers) {
    if (!ContainsSame(*list, a)) list->push_back(a);
  }
}

void RemoveApprovers(Json* list, const Json& approvers) {
  if (!list->is_array()) return;
  Json kept = Json::array();
  for (const auto& a : *list) {
    if (!ContainsSame(approvers, a)) kept.push_back(a);
  }
  *list = std::move(kept);
}

}  // namespace

TenantPolicySplitter::TenantPolicySplitter(TenantPrincipals tenant) : tenant_(std::move(tenant)) {}

StatusOr<TenantPolicyPart> TenantPolicySplitter::Extract(const PolicyDocument& source) const {
  const Json& pol = source.json();
  PolicyPrincipals pp(pol, tenant_);
  TenantPolicyPart part;
  std::set<std::string> tenant_hosts, other_hosts;

  for (const auto& s : RuleSections()) {
    const Json& rules = Section(pol, s.name);
    if (rules.is_object() && rules.empty()) continue;  // absent
    if (!rules.is_array()) return Status::BadInput(std::string("policy \"") + s.name + "\" is not an array");
    for (size_t i = 0; i < rules.size(); ++i) {
      PolicyRuleRef ref{s.name, i, rules[i]};
      auto v = JudgeRule(pp, pol, s, rules[i], ref.Where());
      if (!v.ok()) return v.status();
      switch (v->owner) {
        case AliasOwner::kTenant:
          part.rules.push_back(ref);
          tenant_hosts.insert(v->hosts.begin(), v->hosts.end());
          break;
        case AliasOwner::kMixed:
          part.issues.push_back({PolicyIssueKind::kMixedRule, PolicySeverity::kRefuse, ref.Where(),
                                 rules[i].dump() + " names the tenant and other users",
                                 "split it into one rule per tenant"});
          break;
        case AliasOwner::kOther:
          other_hosts.insert(v->hosts.begin(), v->hosts.end());
          break;
        case AliasOwner::kNeutral:
        case AliasOwner::kGeneric:
          part.generic_rules.push_back(ref);
          other_hosts.insert(v->hosts.begin(), v->hosts.end());
          break;
      }
    }
  }

  const Json& groups = Section(pol, "groups");
  if (!groups.is_object()) return Status::BadInput("policy \"groups\" is not an object");
  for (auto it = groups.begin(); it != groups.end(); ++it) {
    AliasOwner o = pp.GroupOwner(it.key());
    if (o == AliasOwner::kTenant) part.groups[it.key()] = it.value();
    if (o == AliasOwner::kMixed) {
      part.issues.push_back({PolicyIssueKind::kMixedGroup, PolicySeverity::kRefuse, "groups." + it.key(),
                             it.value().dump() + " has the tenant's users and others",
                             "give the tenant its own group"});
    }
  }
  const Json& tags = Section(pol, "tagOwners");
  if (!tags.is_object()) return Status::BadInput("policy \"tagOwners\" is not an object");
  for (auto it = tags.begin(); it != tags.end(); ++it) {
    AliasOwner o = pp.TagOwner(it.key());
    if (o == AliasOwner::kTenant) part.tag_owners[it.key()] = it.value();
    if (o == AliasOwner::kMixed) {
      part.issues.push_back({PolicyIssueKind::kSharedTag, PolicySeverity::kRefuse, "tagOwners." + it.key(),
                             "owned by the tenant and another tenant: " + it.value().dump(),
                             "give each tenant its own tag"});
    }
  }
  const Json& hosts = Section(pol, "hosts");
  if (!hosts.is_object()) return Status::BadInput("policy \"hosts\" is not an object");
  for (const auto& h : tenant_hosts) {
    (other_hosts.count(h) ? part.shared_hosts : part.hosts)[h] = hosts[h];
  }

  const Json& aa = Section(pol, "autoApprovers");
  if (!aa.is_object()) return Status::BadInput("policy \"autoApprovers\" is not an object");
  auto tenant_entries = [&pp](const Json& list) {
    Json out = Json::array();
    if (!list.is_array()) return out;
    for (const auto& a : list) {
      if (a.is_string() && pp.Classify(a.get<std::string>()) == AliasOwner::kTenant) out.push_back(a);
    }
    return out;
  };
  if (aa.contains("routes") && aa["routes"].is_object()) {
    for (auto it = aa["routes"].begin(); it != aa["routes"].end(); ++it) {
      Json mine = tenant_entries(it.value());
      if (!mine.empty()) part.route_approvers[it.key()] = std::move(mine);
    }
  }
  if (aa.contains("exitNode")) part.exit_node_approvers = tenant_entries(aa["exitNode"]);
  return part;
}

std::vector<PolicyIssue> TenantPolicySplitter::CheckTarget(const TenantPolicyPart& part,
                                                           const PolicyDocument& target) const {
  std::vector<PolicyIssue> out;
  const Json& t = target.json();
  CheckNamed("groups", part.groups, t, &out);
  CheckNamed("tagOwners", part.tag_owners, t, &out);
  CheckNamed("hosts", part.hosts, t, &out);
  CheckNamed("hosts", part.shared_hosts, t, &out);
  for (const auto& g : part.generic_rules) {
    if (ContainsSame(Section(t, g.section.c_str()), g.rule)) continue;
    out.push_back({PolicyIssueKind::kGenericMissing, PolicySeverity::kRefuse, "source " + g.Where(),
                   g.rule.dump() + " grants every tenant alike on the source; the target has no identical rule",
                   "add the same rule to the target's " + g.section + " first"});
  }
  return out;
}

StatusOr<PolicyDocument> TenantPolicySplitter::MergeInto(const PolicyDocument& target,
                                                         const TenantPolicyPart& part) const {
  std::vector<PolicyIssue> conflicts;
  for (auto& i : CheckTarget(part, target)) {
    if (i.kind == PolicyIssueKind::kConflict) conflicts.push_back(std::move(i));
  }
  HS_RETURN_IF_ERROR(RefusalStatus(conflicts, "merge into the target's policy"));
  Json doc = target.json();
  if (!doc.is_object()) doc = Json::object();
  AddNamed("groups", part.groups, &doc);
  AddNamed("hosts", part.hosts, &doc);
  AddNamed("hosts", part.shared_hosts, &doc);
  AddNamed("tagOwners", part.tag_owners, &doc);
  for (const auto& r : part.rules) {
    Json& s = doc[r.section];
    if (!s.is_array()) s = Json::array();
    if (!ContainsSame(s, r.rule)) s.push_back(r.rule);
  }
  if (!part.route_approvers.empty() || !part.exit_node_approvers.empty()) {
    Json& aa = doc["autoApprovers"];
    if (!aa.is_object()) aa = Json::object();
    for (auto it = part.route_approvers.begin(); it != part.route_approvers.end(); ++it) {
      AddApprovers(&aa["routes"][it.key()], it.value());
    }
    if (!part.exit_node_approvers.empty()) AddApprovers(&aa["exitNode"], part.exit_node_approvers);
  }
  return PolicyDocument(std::move(doc));
}

StatusOr<PolicyDocument> TenantPolicySplitter::RemoveFrom(const PolicyDocument& source,
                                                          const TenantPolicyPart& part) const {
  Json doc = source.json();
  std::vector<PolicyIssue> changed;
  auto remove_named = [&](const char* section, const Json& entries) {
    if (!doc.contains(section) || !doc[section].is_object()) return;
    Json& s = doc[section];
    for (auto it = entries.begin(); it != entries.end(); ++it) {
      if (!s.contains(it.key())) continue;
      if (!SameJsonValue(s[it.key()], it.value())) {
        changed.push_back({PolicyIssueKind::kChanged, PolicySeverity::kRefuse, std::string(section) + "." + it.key(),
                           "is now " + s[it.key()].dump() + ", was " + it.value().dump() + " when planned",
                           "plan again"});
        continue;
      }
      s.erase(it.key());
    }
  };
  remove_named("groups", part.groups);
  remove_named("tagOwners", part.tag_owners);
  remove_named("hosts", part.hosts);
  HS_RETURN_IF_ERROR(RefusalStatus(changed, "remove from the source's policy"));
  for (const auto& s : RuleSections()) {
    if (!doc.contains(s.name) || !doc[s.name].is_array()) continue;
    Json kept = Json::array();
    for (const auto& rule : doc[s.name]) {
      bool mine = false;
      for (const auto& r : part.rules) mine = mine || (r.section == s.name && SameJsonValue(r.rule, rule));
      if (!mine) kept.push_back(rule);
    }
    doc[s.name] = std::move(kept);
  }
  if (doc.contains("autoApprovers") && doc["autoApprovers"].is_object()) {
    Json& aa = doc["autoApprovers"];
    if (aa.contains("routes") && aa["routes"].is_object()) {
      for (auto it = part.route_approvers.begin(); it != part.route_approvers.end(); ++it) {
        if (!aa["routes"].contains(it.key())) continue;
        RemoveApprovers(&aa["routes"][it.key()], it.value());
        if (aa["routes"][it.key()].empty()) aa["routes"].erase(it.key());
      }
    }
    if (aa.contains("exitNode")) RemoveApprovers(&aa["exitNode"], part.exit_node_approvers);
  }
  return PolicyDocument(std::move(doc));
}

}  // namespace headshift
