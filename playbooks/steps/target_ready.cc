// target_ready: proves the target serves every node key of the tenant. Reloads it only when its
// API answers without some of them, and at most once. A reload that restarts the control plane
// (reload_drops_sessions) first counts the other tenants' devices online there, and afterwards
// waits (timeouts.reconnect_ms) until they are back: that restart is collateral, reported in
// target_restart, never as 0. Then re-checks the copied rows against the target's other rows.
// Journals node_keys, reloaded, collisions and target_restart. Nothing to undo (copy's undo
// removes the rows).
#include <set>

#include <spdlog/spdlog.h>

#include "playbooks/migration_run.h"
#include "playbooks/serve_or_reload.h"
#include "playbooks/steps/steps.h"
#include "playbooks/target_restart_accounting.h"
#include "playbooks/tenant_control_nodes.h"
#include "playbooks/ghost_nodes.h"
#include "playbooks/journal_details.h"

namespace headshift::steps {

namespace {

using json = nlohmann::json;

// The copy checked the target cluster's values inside its own transaction; a device may still have
// registered on the target since, with a tailnet IP or name the copied rows use (headscale
// allocates from what it has loaded, and the target loads the copied rows only now). Checked again
// here, before the route flips: a clash stops the move, which is then rolled back.
Status CheckCollisions(MigrationRun& run) {
  const std::string& to = run.ref.to;
  auto clashes = run.env.mover->TargetCollisions(run.ref);
  if (!clashes.ok()) return clashes.status().WithContext("re-checking cluster " + to + " for collisions");
  if (clashes->empty()) return Status::Ok();
  std::string msg = "cluster " + to + " now has rows that clash with the copied rows of " + run.ref.tenant + ":";
  for (const auto& c : *clashes) {
    run.rep.conflicts.push_back(c.ToJson());
    msg += "\n  - " + c.message;
  }
  return Status::Failed(msg, clashes->front().fix.empty() ? "resolve the clash on cluster " + to + ", then migrate again"
                                                          : clashes->front().fix + "; then migrate again");
}

StatusOr<json> Run(MigrationRun& run) {
  MigrationEnv& env = run.env;
  const Config& config = env.config;
  const std::string& to = run.ref.to;
  const ClusterConfig* target = config.FindCluster(to);
  auto nodes = env.mover->TenantNodes(run.ref.tenant, to);
  if (!nodes.ok()) return nodes.status();
  std::set<std::string> want;
  for (const auto& n : *nodes) {
    if (!n.deleted && !n.expired) want.insert(n.node_key);
  }
  auto api = env.Control(to);
  if (!api.ok()) return api.status();
  TargetRestartReport tr;
  tr.cluster = to;
  tr.drops_sessions = !target->reload_command.empty() && target->reload_drops_sessions;
  tr.devices = 0;
  std::optional<OnlineDevices> others;
  bool forbid_restart = run.opts.no_target_restart || run.rec.details.value("no_target_restart", false);
  MigrationClock::time_point reloaded_at;
  ServeWait wait;
  wait.wanted = static_cast<int64_t>(want.size());
  wait.whose = run.ref.tenant;
  wait.missing = [&]() -> StatusOr<int64_t> {
    auto served = TenantControlNodes(**api, run.ref.tenant, *nodes);
    if (!served.ok()) return served.status();
    std::set<std::string> have;
    for (const auto& n : *served) have.insert(n.node_key);
    int64_t missing = 0;
    for (const auto& k : want) missing += have.count(k) ? 0 : 1;
    return missing;
  };
  wait.before_reload = [&](int64_t missing) -> Status {
    if (tr.drops_sessions) {
      tr.devices.reset();
      others = CountOtherTenants(env, run.ref.tenant, to, tr);
      if (others) KeepResidentTenants(env, to, tr, &*others);
      if (forbid_restart) {
        run.rep.target_restart = tr;
        return Status::Failed("cluster " + to + " does not serve " + std::to_string(missing) + " node keys of " +
                                  run.ref.tenant + " and its reload restarts it (" + tr.Describe() +
                                  "); --no-target-restart forbids that",
                              "migrate without --no-target-restart (the restart is reported as collateral), or "
                              "make cluster " + to + " serve the copied rows without a restart");
      }
    }
    // The target caches nodes (NodeStore): make it read the copied rows.
    spdlog::info("target_ready: cluster {} does not serve {} node keys; running its reload command{}", to, missing,
                 tr.drops_sessions ? " (restarts it: " + tr.Describe() + ")" : "");
    return Status::Ok();
  };
  Status served = ServeOrReload(config, to, wait, tr, reloaded_at);
  if (tr.reloaded) {  // whatever the command did to the target counts, even if it failed
    run.rep.reloaded_target = true;
    run.rep.target_restart = tr;
  }
  HS_RETURN_IF_ERROR(served);
  // The restarted target answers again: wait for the other tenants' devices it dropped.
  AwaitDroppedDevices(**api, others, config.timeouts.reconnect_ms, reloaded_at, tr);
  if (tr.restarted && !tr.stragglers.empty()) {
    run.rep.warnings.push_back(std::to_string(tr.stragglers.size()) + " device(s) of other tenants dropped by "
                               "the restart of cluster " + to + " are not back online there yet (see "
                               "target_restart.stragglers)");
  }
  if (tr.restarted && !tr.devices) {
    run.rep.warnings.push_back("cluster " + to + " was restarted; how many other tenants' devices it dropped is "
                               "unknown (" + tr.unknown_reason + ")");
  }
  run.rep.target_restart = tr;
  HS_RETURN_IF_ERROR(CheckCollisions(run));
  return json{{"node_keys", want.size()}, {"reloaded", tr.reloaded}, {"collisions", 0},
              {"target_restart", tr.ToJson()}};
}

// Rollback, right after copy's undo removed the rows from the target: the target (restarted here, so
// it loaded them) still lists the tenant's devices from memory. Deleted through its API once offline
// there (ghost_nodes.h), so a later move is served from fresh rows, never from stale memory.
Status Undo(MigrationRun& run, json& details) {
  auto nodes = run.env.mover->TenantNodes(run.ref.tenant, run.ref.from);
  if (!nodes.ok()) return nodes.status();
  std::set<std::string> keys;
  for (const auto& n : *nodes) keys.insert(n.node_key);
  std::set<std::string> on_source = OnlineNodeKeys(run.env, run.ref.from, run.ref.tenant, *nodes);
  auto ghosts = RemoveGhosts(run.env, run.ref.to, keys, on_source,
                             std::chrono::milliseconds(run.env.config.timeouts.reconnect_ms));
  if (!ghosts.ok()) return ghosts.status();
  json g = ghosts->ToJson();
  g["cluster"] = run.ref.to;
  run.rep.ghosts = g;
  details["ghosts"] = g;
  if (!ghosts->stragglers.empty()) {
    run.rep.warnings.push_back(std::to_string(ghosts->stragglers.size()) + " device(s) of " + run.ref.tenant +
                               " are still online on cluster " + run.ref.to + " after the rollback; their stale "
                               "entries stay there until it restarts (delete them with `headscale nodes delete`)");
  }
  return Status::Ok();
}

}  // namespace

MigrationStep TargetReady() {
  return MigrationStep{
      .name = "target_ready",
      .run = Run,
      .undo = Undo,
      .undo_after = "copy",
  };
}

}  // namespace headshift::steps
