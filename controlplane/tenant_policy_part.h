// TenantPolicyPart: the part of a node's headscale policy that belongs to one tenant (what
// TenantPolicySplitter::Extract found), and PolicyIssue, a typed finding about splitting it.
//
// Plain data; copies are independent. JSON values are nlohmann::ordered_json in the policy's own
// member order.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/status.h"

namespace headshift {

enum class PolicyIssueKind {
  kMixedRule,      // a rule names the tenant's principals and another tenant's
  kMixedGroup,     // a group has the tenant's users and others
  kSharedTag,      // a tag owned by the tenant and by another tenant
  kConflict,       // the target defines a group / tag / host of the part differently
  kGenericMissing, // the source has a generic rule (*, autogroup:...) the target lacks
  kChanged,        // the source changed since the part was extracted (RemoveFrom)
};
const char* PolicyIssueKindName(PolicyIssueKind k);

enum class PolicySeverity { kRefuse, kRisk };

struct PolicyIssue {
  PolicyIssueKind kind = PolicyIssueKind::kMixedRule;
  PolicySeverity severity = PolicySeverity::kRefuse;
  std::string where;   // "acls[3]", "groups.group:eng", "tagOwners.tag:srv", "hosts.db"
  std::string detail;  // the rule or value as JSON, and why
  std::string fix;
  std::string ToString() const;  // "acls[3]: mixed_rule: ... (fix: ...)"
};

// Refused (exit 3) listing every refuse-level issue, or OK when there is none.
Status RefusalStatus(const std::vector<PolicyIssue>& issues, const std::string& context);

// A rule of one of the rule sections ("acls", "grants", "ssh", "nodeAttrs") at its index in the source.
struct PolicyRuleRef {
  std::string section;
  size_t index = 0;
  nlohmann::ordered_json rule;
  std::string Where() const { return section + "[" + std::to_string(index) + "]"; }
};

struct TenantPolicyPart {
  std::vector<PolicyRuleRef> rules;                                            // moved
  nlohmann::ordered_json groups = nlohmann::ordered_json::object();            // moved: name -> members
  nlohmann::ordered_json tag_owners = nlohmann::ordered_json::object();        // moved: tag -> owners
  nlohmann::ordered_json hosts = nlohmann::ordered_json::object();             // used only by its rules: moved
  nlohmann::ordered_json shared_hosts = nlohmann::ordered_json::object();      // also used by others: copied
  nlohmann::ordered_json route_approvers = nlohmann::ordered_json::object();   // prefix -> its approvers
  nlohmann::ordered_json exit_node_approvers = nlohmann::ordered_json::array();
  std::vector<PolicyRuleRef> generic_rules;  // not moved; the target must have each one identically
  std::vector<PolicyIssue> issues;           // refusals found in the source policy

  // Tags the tenant owns (tagOwners keys): its tagged nodes belong to it.
  std::vector<std::string> OwnedTags() const;
  // Nothing to move (generic rules do not count).
  bool empty() const;
};

}  // namespace headshift
