#include "playbooks/ghost_nodes.h"

#include <algorithm>
#include <atomic>
#include <mutex>
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

namespace {

// Each DELETE waits for headscale's NodeStore batch tick (tuning.node_store_batch_timeout, 500 ms by default)
// and recomputes the policy's node sets: one after the other, a few hundred ghosts took ~1 s each (measured
// at 302 devices, bench/RESULTS.md). Deletes in flight together share a tick, and headscale's batcher merges
// the policy changes they cause (every device left on the node gets one map per batch tick while deletes go
// on) into fewer map updates. 8 in flight: 102 ghosts in 15 s, each answered in 0.5-2 s on the real-peer lab;
// 16 pushed single answers past 5 s (the deletes serialize on headscale's policy lock).
constexpr size_t kDeleteConcurrency = 8;

Status DeleteConcurrently(MigrationEnv& env, const std::string& cluster, const std::vector<const ControlNode*>& doomed,
                          int64_t& deleted) {
  std::atomic<size_t> next{0};
  std::atomic<int64_t> done{0};
  std::mutex mu;
  Status first_error;  // guarded by mu
  std::atomic<bool> failed{false};
  auto worker = [&] {
    auto api = env.Control(cluster);
    if (!api.ok()) {
      std::lock_guard<std::mutex> l(mu);
      if (first_error.ok()) first_error = api.status();
      failed = true;
      return;
    }
    while (!failed) {
      size_t i = next++;
      if (i >= doomed.size()) break;
      const ControlNode& n = *doomed[i];
      Status st = (*api)->DeleteNode(n.id);
      if (!st.ok()) {
        std::lock_guard<std::mutex> l(mu);
        if (first_error.ok()) {
          first_error = st.WithContext("deleting the stale entry of " + n.name + " from cluster " + cluster);
        }
        failed = true;
        return;
      }
      ++done;
    }
  };
  std::vector<std::thread> threads;
  for (size_t i = 0; i < std::min(kDeleteConcurrency, doomed.size()); ++i) threads.emplace_back(worker);
  for (auto& t : threads) t.join();
  deleted += done;
  return first_error;
}

}  // namespace

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
  std::vector<const ControlNode*> doomed;
  for (const auto& n : ghosts) {
    if (n.online && !online_elsewhere.count(n.node_key)) {
      out.stragglers.push_back(n.name);
    } else {
      doomed.push_back(&n);
    }
  }
  if (doomed.size() > kDeleteConcurrency) {
    spdlog::info("cluster {}: deleting {} stale node entries (ghosts), {} at a time", cluster, doomed.size(),
                 kDeleteConcurrency);
  }
  HS_RETURN_IF_ERROR(DeleteConcurrently(env, cluster, doomed, out.deleted));
  if (out.deleted > 0) spdlog::info("cluster {}: removed {} stale node entries (ghosts)", cluster, out.deleted);
  return out;
}

}  // namespace headshift
