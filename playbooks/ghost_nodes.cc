#include "playbooks/ghost_nodes.h"

#include <thread>

#include <spdlog/spdlog.h>

#include "playbooks/tenant_control_nodes.h"

namespace headshift {

nlohmann::json GhostCleanup::ToJson() const {
  return {{"applicable", applicable}, {"deleted", deleted}, {"stragglers", stragglers}};
}

std::set<std::string> OnlineNodeKeys(MigrationEnv& env, const std::string& cluster, const std::string& tenant,
                                     const std::vector<migrate::TenantNode>& nodes) {
  std::set<std::string> out;
  auto api = env.Control(cluster);
  if (!api.ok()) return out;
  auto listed = TenantControlNodes(**api, tenant, nodes);
  if (!listed.ok()) return out;
  for (const auto& n : *listed) {
    if (n.online) out.insert(n.node_key);
  }
  return out;
}

StatusOr<GhostCleanup> RemoveGhosts(MigrationEnv& env, const std::string& cluster,
                                    const std::set<std::string>& node_keys,
                                    const std::set<std::string>& online_elsewhere, std::chrono::milliseconds wait) {
  GhostCleanup out;
  const ClusterConfig* c = env.config.FindCluster(cluster);
  if (!c || env.config.database.layout != DbLayout::kSplit || !c->cached_nodes || node_keys.empty()) return out;
  out.applicable = true;
  auto api = env.Control(cluster);
  if (!api.ok()) return api.status();
  auto deadline = std::chrono::steady_clock::now() + wait;
  std::vector<ControlNode> ghosts;
  for (;;) {
    auto listed = (*api)->ListNodes("");
    if (!listed.ok()) return listed.status().WithContext("listing the nodes of cluster " + cluster);
    ghosts.clear();
    bool any_online = false;
    for (const auto& n : *listed) {
      if (!node_keys.count(n.node_key)) continue;
      ghosts.push_back(n);
      any_online = any_online || (n.online && !online_elsewhere.count(n.node_key));
    }
    if (!any_online || std::chrono::steady_clock::now() > deadline) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
  for (const auto& n : ghosts) {
    if (n.online && !online_elsewhere.count(n.node_key)) {
      out.stragglers.push_back(n.name);
      continue;
    }
    HS_RETURN_IF_ERROR((*api)->DeleteNode(n.id).WithContext("deleting the stale entry of " + n.name +
                                                            " from cluster " + cluster));
    ++out.deleted;
  }
  if (out.deleted > 0) spdlog::info("cluster {}: removed {} stale node entries (ghosts)", cluster, out.deleted);
  return out;
}

}  // namespace headshift
