#include "playbooks/target_restart_accounting.h"

#include <set>

namespace headshift {

using json = nlohmann::json;

TargetRestartReport PlanTargetRestart(MigrationEnv& env, const std::string& tenant, const ClusterConfig& target) {
  TargetRestartReport tr;
  tr.cluster = target.id;
  tr.planned = true;
  tr.drops_sessions = !target.reload_command.empty() && target.reload_drops_sessions;
  tr.reload_needed = target.cached_nodes && !target.reload_command.empty();
  tr.restarted = tr.reload_needed && tr.drops_sessions;
  if (!tr.drops_sessions) return tr;
  CountOtherTenants(env, tenant, target.id, tr);
  return tr;
}

std::optional<OnlineDevices> CountOtherTenants(MigrationEnv& env, const std::string& tenant,
                                               const std::string& cluster, TargetRestartReport& tr) {
  auto api = env.Control(cluster);
  if (!api.ok()) {
    tr.unknown_reason = api.status().message();
    return std::nullopt;
  }
  auto online = OtherTenantsOnline(**api, tenant);
  if (!online.ok()) {
    tr.unknown_reason = "cluster " + cluster + " API: " + online.status().message();
    return std::nullopt;
  }
  tr.devices = online->count();
  tr.tenants = online->tenants;
  return *online;
}

void KeepResidentTenants(MigrationEnv& env, const std::string& cluster, TargetRestartReport& tr,
                         OnlineDevices* online) {
  if (!tr.devices) return;
  auto load = env.mover->Load();
  if (!load.ok()) return;
  std::set<std::string> resident;
  if (auto it = load->devices.find(cluster); it != load->devices.end()) {
    for (const auto& [t, n] : it->second) resident.insert(t);
  }
  int64_t kept = 0;
  for (auto it = tr.tenants.begin(); it != tr.tenants.end();) {
    if (resident.count(it->first)) {
      kept += it->second;
      ++it;
    } else {
      it = tr.tenants.erase(it);
    }
  }
  tr.devices = kept;
  if (online) online->KeepTenants(resident);
}

void AddRestartRisk(const std::string& tenant, const TargetRestartReport& tr, bool no_target_restart,
                    std::vector<Risk>& risks, std::vector<std::string>& problems) {
  if (!tr.drops_sessions) return;
  json details{{"cluster", tr.cluster},
               {"expected", tr.reload_needed},
               {"devices", tr.devices ? json(*tr.devices) : json()},
               {"tenants", tr.devices ? json(tr.tenants) : json()}};
  if (!tr.devices) details["unknown_reason"] = tr.unknown_reason;
  risks.push_back({"target_restart", tr.Describe(), details});
  if (no_target_restart && tr.reload_needed) {
    problems.push_back("target_restart: " + tr.Describe() + ", and --no-target-restart refuses that (fix: migrate " +
                       tenant + " in a maintenance window without --no-target-restart, or to a cluster whose "
                       "reload keeps its connections (clusters[].reload_drops_sessions: false); `headshift plan` "
                       "shows the cost)");
  }
}

void AwaitDroppedDevices(HeadscaleClient& api, const std::optional<OnlineDevices>& dropped, int64_t reconnect_ms,
                         std::chrono::steady_clock::time_point reloaded_at, TargetRestartReport& tr) {
  if (!tr.restarted) return;
  if (dropped && dropped->count() > 0) {
    Reconnection back = WaitBackOnline(api, *dropped, ReconnectWait(reconnect_ms, dropped->by_id.size()), reloaded_at);
    tr.reconnected = back.reconnected;
    tr.stragglers = back.stragglers;
    tr.reconnect_ms = back.ms;
  } else {
    tr.reconnect_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - reloaded_at).count();
  }
}

}  // namespace headshift
