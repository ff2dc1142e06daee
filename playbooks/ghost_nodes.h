// RemoveGhosts: after a tenant's rows left a node, headscale >= 0.27 still holds its devices in memory
// (NodeStore, loaded once at start) and lists them in its API: "online" for the ~10 s disconnect grace,
// then offline, until the node restarts. Operators, dashboards and billing would see the tenant on two
// nodes, and a later move back could pass the "target serves the keys" check on those stale copies
// instead of fresh rows. RemoveGhosts deletes them through the node's own API (DeleteNode: NodeStore
// entry gone, IPs freed, peers told; the row is already gone, which headscale does not mind).
//
// A device is deleted once it is offline there, or online on the node it moved to (`online_elsewhere`:
// its node keys as that node's API lists them online): headscale keeps a disconnected device "online"
// for a 10 s grace, and a device served by the other node is not connected here. It waits (up to
// `wait`) for the others; one still online only there is a straggler (still connected there) and is
// left to the operator. Applies only where ghosts exist: split layout (each node its own database) and a node that
// caches nodes (clusters[].cached_nodes). In the shared layout one row serves both nodes and deleting
// by id would delete the moved row: never done there.
//
// Thread-safety: a function; opens its own API clients (up to 8 deletes in flight, each thread its own).
#pragma once

#include <chrono>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/status.h"
#include "migrate/tenant_facts.h"
#include "playbooks/migration_env.h"

namespace headshift {

struct GhostCleanup {
  bool applicable = false;               // split layout and a caching node
  int64_t deleted = 0;                   // ghosts deleted through the API
  std::vector<std::string> stragglers;   // still online on that node: left to the operator
  nlohmann::json ToJson() const;
};

// The node keys of `nodes` that `cluster`'s API lists online now (empty if it cannot be read: the
// caller then waits for the grace to end, as without it).
std::set<std::string> OnlineNodeKeys(MigrationEnv& env, const std::string& cluster, const std::string& tenant,
                                     const std::vector<migrate::TenantNode>& nodes);

// Deletes `cluster`'s API entries of the devices with these node keys (machine keys double-check the
// match). Failed when the node's API cannot be read or refuses a delete.
StatusOr<GhostCleanup> RemoveGhosts(MigrationEnv& env, const std::string& cluster,
                                    const std::set<std::string>& node_keys,
                                    const std::set<std::string>& online_elsewhere, std::chrono::milliseconds wait);

}  // namespace headshift
