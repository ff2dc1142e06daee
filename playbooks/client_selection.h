// Client selection: which client addresses' sessions a migration resets. A tenant's devices are
// found by their public addresses (nodes.endpoints) plus tenants.<t>.extra_cidrs; an address that
// another tenant's device uses too is shared: spared unless allow_shared (its reset is collateral).
// Used by plan, snapshot_sessions, the fleet's pause before the cut, and rollback.
//
// Thread-safety: uses the mover's connections (one thread at a time).
#pragma once

#include <map>
#include <string>
#include <vector>

#include "common/config.h"
#include "common/status.h"
#include "migrate/tenant_mover.h"

namespace headshift {

struct ClientSelection {
  std::vector<std::string> selected;                       // CIDR texts to reset
  std::map<std::string, std::vector<std::string>> shared;  // address -> other tenants using it
};

// The addresses of `tenant`'s devices on `cluster` to reset, and those it shares with others.
StatusOr<ClientSelection> SelectClients(migrate::TenantMover& mover, const Config& config, const std::string& tenant,
                                        const std::string& cluster, bool allow_shared);

}  // namespace headshift
