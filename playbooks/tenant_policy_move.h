// TenantPolicyMove: a tenant's part of the two nodes' ACL policies, as a migration plans, applies and
// retires it. A multi-tenant headscale keeps tenants apart by its policy; a tenant moved without its
// rules, groups, tags and hosts loses its tailnet on the target (every WireGuard path between its
// devices), so the policy moves with the rows:
//   * plan/preflight: PlanPolicyMove reads both policies through the nodes' own API (GET /api/v1/policy,
//     both policy modes), splits off the tenant's part (controlplane/tenant_policy.h), checks the target
//     can take it, and renders what each node's policy becomes as a diff. It also tells which tags the
//     tenant owns (its tagged devices, user-less since headscale 0.28, move with it).
//   * the `policy` step: ApplyPolicy writes the merged policy to the target (database mode: SetPolicy,
//     which headscale validates and reloads live; file mode: the configured policy_file, atomically, then
//     policy_reload_command, i.e. SIGHUP) and reads it back.
//   * `complete`: the part leaves the source the same way.
// A control plane that does not serve /api/v1/policy (the sandbox stand-in, a headscale older than the
// policy API) is reported as unread: nothing is moved and plan names the risk.
//
// Thread-safety: functions; each call opens its own clients.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/status.h"
#include "controlplane/headscale_client.h"
#include "controlplane/tenant_policy_part.h"
#include "migrate/tag_ownership.h"
#include "playbooks/migration_env.h"

namespace headshift {

struct PolicyMovePlan {
  bool read = false;              // both nodes answered their policy API
  std::string unread_reason;      // why not (read == false)
  std::string source_mode;        // "database" | "file" (how headshift writes it: policy_file configured)
  std::string target_mode;
  PolicyRecord source;            // as the nodes serve them now
  PolicyRecord target;
  TenantPolicyPart part;
  std::vector<PolicyIssue> issues;  // refusals and risks (split, target conflicts, allow-all source)
  std::string source_after;       // the source's policy without the part (JSON text)
  std::string target_after;       // the target's policy with the part (JSON text)
  std::vector<std::string> source_diff;  // PolicyDiff lines, for plan
  std::vector<std::string> target_diff;
  migrate::TagOwnership ownership;  // every tag of the source's tagOwners -> the users owning it

  bool changes_source() const { return !source_diff.empty(); }
  bool changes_target() const { return !target_diff.empty(); }
  // Refused (exit 3) naming each refusal (rule, group, tag, host), else OK.
  Status Refusal(const std::string& tenant, const std::string& from, const std::string& to) const;
  // {"read", "owned_tags", "source": {cluster, mode, diff}, "target": {...}, "issues": [...]}.
  nlohmann::json ToJson(const std::string& from, const std::string& to) const;
};

// Reads and splits both nodes' policies for `tenant` moving `from` -> `to`. Failed only when a node's
// policy API fails in a way other than "not served"; a policy that does not parse is BadInput naming
// the node.
StatusOr<PolicyMovePlan> PlanPolicyMove(MigrationEnv& env, const std::string& tenant, const std::string& from,
                                        const std::string& to);

// The node's policy as its API serves it.
StatusOr<PolicyRecord> ReadPolicy(MigrationEnv& env, const std::string& cluster);

// Makes `policy_json` the policy of `cluster` (database mode: SetPolicy; file mode: atomic write of
// policy_file + policy_reload_command) and reads it back: Failed if the node then serves another policy.
// `set == false` restores "no policy" (database mode: headscale has no delete, so the empty policy {}
// is stored; file mode: the file is written empty).
Status ApplyPolicy(MigrationEnv& env, const std::string& cluster, const PolicyRecord& policy);

}  // namespace headshift
