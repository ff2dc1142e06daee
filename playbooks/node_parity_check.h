// CheckNodeParity: preflight's check that the target node agrees with the source on what the tenant's
// devices depend on, read from both nodes (controlplane/node_parity.h: version, dns.base_domain and
// MagicDNS, prefixes against the tenant's IPs, DERP map, policy mode, OIDC issuer; the Noise key is
// checked by preflight itself). Refusals go to `problems` (exit 3), risks to rep.risks (kind
// parity_<fact>), every difference to rep.parity. Also refuses a node whose policy mode does not match
// how headshift is configured to write its policy (policy_file only for policy.mode: file).
//
// Thread-safety: a function; opens its own clients.
#pragma once

#include <string>
#include <vector>

#include "migrate/tenant_facts.h"
#include "playbooks/migration_env.h"
#include "playbooks/migration_report.h"
#include "playbooks/tenant_policy_move.h"

namespace headshift {

void CheckNodeParity(MigrationEnv& env, const std::string& from, const std::string& to,
                     const std::vector<migrate::TenantNode>& tenant_nodes, const PolicyMovePlan* policy,
                     MigrationReport& rep, std::vector<std::string>& problems);

}  // namespace headshift
