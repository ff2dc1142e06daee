// target_ready: proves the target serves every node key of the tenant. Reloads it only when its
// API answers without some of them, and at most once. A reload that restarts the control plane
// (reload_drops_sessions) first counts the other tenants' devices online there, and afterwards
// waits (timeouts.reconnect_ms) until they are back: that restart is collateral, reported in
// target_restart, never as 0. Then re-checks the copied rows against the target's other rows.
// Journals node_keys, reloaded, collisions and target_restart. Nothing to undo (copy's undo
// removes the rows).
#include <set>
#include <thread>

#include <spdlog/spdlog.h>

#include "common/subprocess.h"
#include "playbooks/migration_run.h"
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
  auto deadline = MigrationClock::now() + std::chrono::milliseconds(config.timeouts.target_ready_ms);
  MigrationClock::time_point reloaded_at;
  size_t missing = want.size();
  std::string last_error;
  for (;;) {
    auto served = TenantControlNodes(**api, run.ref.tenant, *nodes);
    bool answered = served.ok();
    if (answered) {
      std::set<std::string> have;
      for (const auto& n : *served) have.insert(n.node_key);
      missing = 0;
      for (const auto& k : want) missing += have.count(k) ? 0 : 1;
      if (missing == 0) break;
    } else {
      last_error = served.status().message();
    }
    // Only an answer without some keys calls for a reload: an API that does not answer (it may be
    // restarting) is polled, never restarted on a guess.
    if (answered && !tr.reloaded && !target->reload_command.empty()) {
      tr.reload_needed = true;
      if (tr.drops_sessions) {
        tr.devices.reset();
        others = CountOtherTenants(env, run.ref.tenant, to, tr);
        if (others) KeepResidentTenants(env, to, tr, &*others);
        if (forbid_restart) {
          tr.restarted = false;
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
      reloaded_at = MigrationClock::now();
      auto pr = RunArgv(target->reload_command, config.timeouts.reload_command_ms);
      if (!pr.ok()) return pr.status().WithContext("reload command of cluster " + to);
      // From here on the command ran: whatever it did to the target counts, even if it failed.
      tr.reloaded = true;
      tr.restarted = tr.drops_sessions;
      run.rep.reloaded_target = true;
      run.rep.target_restart = tr;
      if (pr->exit_code != 0) {
        return Status::Failed("reload command of cluster " + to + " exited " + std::to_string(pr->exit_code) +
                              (pr->timed_out ? " (timed out)" : "") + ": " + pr->output.substr(0, 500));
      }
      continue;
    }
    if (MigrationClock::now() > deadline) {
      return Status::Failed(
          "cluster " + to + " does not serve " + std::to_string(missing) + " of " + std::to_string(want.size()) +
              " node keys of " + run.ref.tenant + " after " + std::to_string(config.timeouts.target_ready_ms) +
              " ms" + (last_error.empty() ? "" : " (last error: " + last_error + ")"),
          target->reload_command.empty() ? "set clusters[" + to + "].reload_command so headscale reloads its nodes"
                                         : "check that the reload command makes headscale re-read its database");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
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
