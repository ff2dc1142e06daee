#include "playbooks/target_restart.h"

#include <algorithm>
#include <set>
#include <thread>

namespace headshift {

using Clock = std::chrono::steady_clock;

namespace {

std::string NodeId(const ControlNode& n) { return n.id.empty() ? n.node_key : n.id; }

}  // namespace

std::chrono::milliseconds ReconnectWait(int64_t reconnect_ms, size_t devices) {
  return std::chrono::milliseconds(std::max<int64_t>(reconnect_ms, static_cast<int64_t>(devices) * kReconnectPerDeviceMs));
}

std::chrono::milliseconds ListPollInterval(size_t devices, std::chrono::milliseconds floor) {
  int64_t ms = std::max<int64_t>(floor.count(), static_cast<int64_t>(devices) / 5);
  return std::chrono::milliseconds(std::min<int64_t>(ms, 2000));
}

void OnlineDevices::KeepTenants(const std::set<std::string>& keep) {
  for (auto it = by_id.begin(); it != by_id.end();) {
    std::string tenant = it->second.substr(0, it->second.find('/'));
    it = keep.count(tenant) ? std::next(it) : by_id.erase(it);
  }
  for (auto it = tenants.begin(); it != tenants.end();) it = keep.count(it->first) ? std::next(it) : tenants.erase(it);
}

StatusOr<OnlineDevices> OtherTenantsOnline(HeadscaleClient& api, const std::string& tenant) {
  auto nodes = api.ListNodes("");
  if (!nodes.ok()) return nodes.status();
  OnlineDevices out;
  for (const auto& n : *nodes) {
    if (!n.online || n.user == tenant) continue;
    if (!out.by_id.emplace(NodeId(n), n.user + "/" + n.name).second) continue;
    ++out.tenants[n.user];
  }
  return out;
}

Reconnection WaitBackOnline(HeadscaleClient& api, const OnlineDevices& before, std::chrono::milliseconds timeout,
                            Clock::time_point since) {
  Reconnection out;
  std::set<std::string> back;
  auto deadline = Clock::now() + timeout;
  for (;;) {
    auto nodes = api.ListNodes("");
    if (nodes.ok()) {
      for (const auto& n : *nodes) {
        if (n.online && before.by_id.count(NodeId(n))) back.insert(NodeId(n));
      }
      if (back.size() == before.by_id.size()) break;  // a device seen back once counts as back
    }
    if (Clock::now() > deadline) break;
    // Each poll lists every node of the cluster; polling harder steals CPU from the reconnecting
    // clients when they share the host's CPUs.
    std::this_thread::sleep_for(ListPollInterval(before.by_id.size(), std::chrono::milliseconds(200)));
  }
  out.ms = std::chrono::duration<double, std::milli>(Clock::now() - since).count();
  for (const auto& [id, name] : before.by_id) {
    if (back.count(id)) ++out.reconnected;
    else out.stragglers.push_back(name);
  }
  return out;
}

}  // namespace headshift
