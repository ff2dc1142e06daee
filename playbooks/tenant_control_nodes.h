// TenantControlNodes: a tenant's devices as a control plane's API lists them. The API filters by user
// (`?user=`), but a tenant's tagged devices have no user since headscale 0.28 (their tags own them), so
// when the tenant has tagged devices the whole node list is read and matched by node key.
//
// Thread-safety: a function; the client is the caller's.
#pragma once

#include <string>
#include <vector>

#include "common/status.h"
#include "controlplane/headscale_client.h"
#include "migrate/tenant_facts.h"

namespace headshift {

// True if one of `nodes` is a tagged device (no user).
bool HasTaggedDevices(const std::vector<migrate::TenantNode>& nodes);

// The API's entries of the tenant: its user's nodes, plus (when `nodes` has tagged devices) the
// entries whose node key is one of `nodes`'.
StatusOr<std::vector<ControlNode>> TenantControlNodes(HeadscaleClient& api, const std::string& tenant,
                                                      const std::vector<migrate::TenantNode>& nodes);

}  // namespace headshift
