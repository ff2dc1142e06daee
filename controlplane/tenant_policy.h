// TenantPolicySplitter: moves one tenant's part of a headscale v0.29 ACL policy between two nodes.
//
// Extract() finds the tenant's part of a node's policy (see PolicyPrincipals for who an alias names):
//   * rules of "acls", "grants", "ssh" and "nodeAttrs" whose principals (src, dst, grants' via, nodeAttrs'
//     target) are the tenant's, possibly with hosts, IPs, "*" or autogroups beside them;
//   * groups whose members are all its users, tags whose owners are all its principals (tagOwners);
//   * hosts used by its rules: moved when no other rule uses them, copied (kept on the source) otherwise;
//   * its entries of autoApprovers.routes and autoApprovers.exitNode.
// Rules naming no tenant at all and some generic principal ("*", autogroup:self, autogroup:member, ...)
// or only hosts/IPs move nothing but must grant the same on the target: they are listed as
// generic_rules and CheckTarget() refuses a target that lacks one of them identically.
// What cannot be split is listed in part.issues (refuse severity): a rule naming the tenant and another
// tenant, a group with the tenant's users and others, a tag owned by the tenant and another tenant.
//
// MergeInto() and RemoveFrom() are idempotent: applying one twice changes nothing the second time.
// Neither keeps comments of the policy (PolicyDocument).
//
// Thread-safety: immutable after construction; const methods may be called concurrently.
#pragma once

#include <vector>

#include "common/status.h"
#include "controlplane/policy_document.h"
#include "controlplane/policy_principals.h"
#include "controlplane/tenant_policy_part.h"

namespace headshift {

class TenantPolicySplitter {
 public:
  explicit TenantPolicySplitter(TenantPrincipals tenant);

  // The tenant's part of `source`. Always returns a part; refusals are in part.issues (use
  // RefusalStatus(part.issues, ...) to stop on them). BadInput only for a policy whose sections have
  // the wrong JSON types (headscale would not have accepted it).
  StatusOr<TenantPolicyPart> Extract(const PolicyDocument& source) const;

  // What merging `part` into `target` would refuse: groups, tags or hosts the target defines
  // differently (kConflict), and generic rules of the source the target lacks (kGenericMissing).
  std::vector<PolicyIssue> CheckTarget(const TenantPolicyPart& part, const PolicyDocument& target) const;

  // `target` with the part added: rules appended unless an identical rule is there, groups / tags /
  // hosts added unless identical, approvers added to their lists. Refused (nothing returned) on a
  // kConflict of CheckTarget; generic rules are not checked here.
  StatusOr<PolicyDocument> MergeInto(const PolicyDocument& target, const TenantPolicyPart& part) const;

  // `source` without the part: its rules (every identical copy), groups, tags, moved hosts and
  // approvers removed; shared hosts and generic rules stay. Refused (kChanged) if a group, tag or host
  // of the part has another value in `source` now (the policy changed since Extract).
  StatusOr<PolicyDocument> RemoveFrom(const PolicyDocument& source, const TenantPolicyPart& part) const;

  const TenantPrincipals& tenant() const { return tenant_; }

 private:
  TenantPrincipals tenant_;
};

}  // namespace headshift
