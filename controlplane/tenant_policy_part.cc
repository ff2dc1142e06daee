#include "controlplane/tenant_policy_part.h"

namespace headshift {

const char* PolicyIssueKindName(PolicyIssueKind k) {
  switch (k) {
    case PolicyIssueKind::kMixedRule: return "mixed_rule";
    case PolicyIssueKind::kMixedGroup: return "mixed_group";
    case PolicyIssueKind::kSharedTag: return "shared_tag";
    case PolicyIssueKind::kConflict: return "conflict";
    case PolicyIssueKind::kGenericMissing: return "generic_rule_missing";
    case PolicyIssueKind::kChanged: return "changed";
  }
  return "?";
}

std::string PolicyIssue::ToString() const {
  std::string s = where + ": " + PolicyIssueKindName(kind) + ": " + detail;
  if (!fix.empty()) s += " (fix: " + fix + ")";
  return s;
}

Status RefusalStatus(const std::vector<PolicyIssue>& issues, const std::string& context) {
  std::string msg;
  size_t n = 0;
  for (const auto& i : issues) {
    if (i.severity != PolicySeverity::kRefuse) continue;
    msg += (n++ ? "; " : "") + i.ToString();
  }
  if (n == 0) return Status::Ok();
  return Status::Refused(context + ": the tenant's policy cannot be split safely (" + std::to_string(n) +
                             (n == 1 ? " problem): " : " problems): ") + msg,
                         "change the policies as named, then retry; nothing was changed");
}

std::vector<std::string> TenantPolicyPart::OwnedTags() const {
  std::vector<std::string> out;
  for (auto it = tag_owners.begin(); it != tag_owners.end(); ++it) out.push_back(it.key());
  return out;
}

bool TenantPolicyPart::empty() const {
  return rules.empty() && groups.empty() && tag_owners.empty() && hosts.empty() && shared_hosts.empty() &&
         route_approvers.empty() && exit_node_approvers.empty();
}

}  // namespace headshift
