#include "playbooks/batch_restart.h"

#include <map>
#include <thread>

#include <spdlog/spdlog.h>

#include "common/subprocess.h"
#include "playbooks/migration_run.h"
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
  auto deadline = MigrationClock::now() + std::chrono::milliseconds(config.timeouts.target_ready_ms);
  MigrationClock::time_point reloaded_at;
  int64_t missing = 0;
  std::string last_error;
  for (;;) {
    bool answered = true;
    missing = 0;
    for (const auto& t : tenants) {
      auto served = TenantControlNodes(**api, t, nodes[t]);
      if (!served.ok()) {
        answered = false;
        last_error = served.status().message();
        break;
      }
      std::set<std::string> have;
      for (const auto& n : *served) have.insert(n.node_key);
      for (const auto& k : want[t]) missing += have.count(k) ? 0 : 1;
    }
    if (answered && missing == 0) break;
    if (answered && !tr.reloaded && !target->reload_command.empty()) {
      tr.reload_needed = true;
      if (tr.drops_sessions) {
        tr.devices.reset();
        others = CountTargetOwnDevices(env, to, moving, tr);
      }
      spdlog::info("batch: cluster {} does not serve {} node keys of {} tenant(s); running its reload command once{}",
                   to, missing, tenants.size(),
                   !tr.drops_sessions ? std::string()
                   : tr.devices       ? " (restarts it: " + std::to_string(*tr.devices) + " of its own devices reconnect)"
                                      : " (restarts it: its own devices online unknown, " + tr.unknown_reason + ")");
      reloaded_at = MigrationClock::now();
      auto pr = RunArgv(target->reload_command, config.timeouts.reload_command_ms);
      if (!pr.ok()) return pr.status().WithContext("reload command of cluster " + to);
      tr.reloaded = true;  // from here on whatever it did counts, even if it failed
      tr.restarted = tr.drops_sessions;
      if (pr->exit_code != 0) {
        return Status::Failed("reload command of cluster " + to + " exited " + std::to_string(pr->exit_code) +
                              (pr->timed_out ? " (timed out)" : "") + ": " + pr->output.substr(0, 500));
      }
      continue;
    }
    if (MigrationClock::now() > deadline) {
      return Status::Failed("cluster " + to + " does not serve " + std::to_string(missing) + " of " +
                                std::to_string(out.node_keys) + " node keys of the batch after " +
                                std::to_string(config.timeouts.target_ready_ms) + " ms" +
                                (last_error.empty() ? "" : " (last error: " + last_error + ")"),
                            target->reload_command.empty()
                                ? "set clusters[" + to + "].reload_command so headscale reloads its nodes"
                                : "check that the reload command makes headscale re-read its database");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  AwaitDroppedDevices(**api, others, config.timeouts.reconnect_ms, reloaded_at, tr);
  return Status::Ok();
}

}  // namespace headshift
