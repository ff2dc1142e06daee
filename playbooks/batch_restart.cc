#include "playbooks/batch_restart.h"

#include <map>

#include <spdlog/spdlog.h>

#include "playbooks/migration_run.h"
#include "playbooks/serve_or_reload.h"
#include "playbooks/target_restart.h"
#include "playbooks/target_restart_accounting.h"
#include "playbooks/tenant_control_nodes.h"

namespace headshift {

using json = nlohmann::json;

std::optional<OnlineDevices> CountTargetOwnDevices(MigrationEnv& env, const std::string& to, const std::set<std::string>& moving,
                                           TargetRestartReport& tr) {
  std::optional<OnlineDevices> online = CountOtherTenants(env, "", to, tr);
  if (!online) return online;
  KeepResidentTenants(env, to, tr, &*online);
  std::set<std::string> keep;
  for (const auto& [t, n] : online->tenants) {
    if (!moving.count(t)) keep.insert(t);
  }
  online->KeepTenants(keep);
  tr.tenants = online->tenants;
  tr.devices = online->count();
  return online;
}

json BatchRestartOutcome::ToJson() const {
  json j = report.ToJson();
  j["tenants_served"] = tenants;
  j["reason"] = reason;
  j["node_keys"] = node_keys;
  return j;
}

Status RestartTargetOnce(MigrationEnv& env, const std::string& to, const std::vector<std::string>& tenants,
                         const std::set<std::string>& moving, BatchRestartOutcome& out) {
  const Config& config = env.config;
  const ClusterConfig* target = config.FindCluster(to);
  out.tenants = tenants;
  TargetRestartReport& tr = out.report;
  tr.cluster = to;
  tr.drops_sessions = !target->reload_command.empty() && target->reload_drops_sessions;
  tr.devices = 0;
  // The keys each tenant must be served with: its rows on the target now.
  std::map<std::string, std::vector<migrate::TenantNode>> nodes;
  std::map<std::string, std::set<std::string>> want;
  for (const auto& t : tenants) {
    auto n = env.mover->TenantNodes(t, to);
    if (!n.ok()) return n.status().WithContext("rows of " + t + " on cluster " + to);
    for (const auto& node : *n) {
      if (!node.deleted && !node.expired) want[t].insert(node.node_key);
    }
    out.node_keys += static_cast<int64_t>(want[t].size());
    nodes[t] = std::move(*n);
  }
  auto api = env.Control(to);
  if (!api.ok()) return api.status();
  std::optional<OnlineDevices> others;
  MigrationClock::time_point reloaded_at;
  ServeWait wait;
  wait.wanted = out.node_keys;
  wait.whose = "the batch";
  wait.missing = [&]() -> StatusOr<int64_t> {
    int64_t missing = 0;
    for (const auto& t : tenants) {
      auto served = TenantControlNodes(**api, t, nodes[t]);
      if (!served.ok()) return served.status();
      std::set<std::string> have;
      for (const auto& n : *served) have.insert(n.node_key);
      for (const auto& k : want[t]) missing += have.count(k) ? 0 : 1;
    }
    return missing;
  };
  wait.before_reload = [&](int64_t missing) -> Status {
    if (tr.drops_sessions) {
      tr.devices.reset();
      others = CountTargetOwnDevices(env, to, moving, tr);
    }
    spdlog::info("batch: cluster {} does not serve {} node keys of {} tenant(s); running its reload command once{}",
                 to, missing, tenants.size(),
                 !tr.drops_sessions ? std::string()
                 : tr.devices       ? " (restarts it: " + std::to_string(*tr.devices) + " of its own devices reconnect)"
                                    : " (restarts it: its own devices online unknown, " + tr.unknown_reason + ")");
    return Status::Ok();
  };
  HS_RETURN_IF_ERROR(ServeOrReload(config, to, wait, tr, reloaded_at));
  AwaitDroppedDevices(**api, others, config.timeouts.reconnect_ms, reloaded_at, tr);
  return Status::Ok();
}

}  // namespace headshift
