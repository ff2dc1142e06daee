#include "playbooks/tenant_migration.h"

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <future>
#include <mutex>
#include <optional>
#include <set>
#include <thread>

#include <spdlog/spdlog.h>

#include "common/subprocess.h"
#include "controlplane/headscale_client.h"
#include "dataplane/cidr.h"
#include "dataplane/host_fanout.h"
#include "dataplane/sessions.h"
#include "migrate/tenant_facts.h"
#include "migrate/tenant_mover.h"
#include "playbooks/target_restart.h"
#include "proxycfg/route_backend.h"

namespace headshift {

using Clock = std::chrono::steady_clock;
using json = nlohmann::json;

namespace {

double MsSince(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

// Test hook: HEADSHIFT_CRASH_AFTER=<step> kills the process right after <step> is journaled done.
void MaybeCrashAfter(const std::string& step) {
  const char* at = std::getenv("HEADSHIFT_CRASH_AFTER");
  if (at && step == at) {
    spdlog::warn("fault injection: crashing after step {}", step);
    std::raise(SIGKILL);
  }
}

size_t StepIndex(const std::string& step) {
  const auto& s = MigrationSteps();
  return static_cast<size_t>(std::find(s.begin(), s.end(), step) - s.begin());
}

bool StepDone(const migrate::MigrationRecord& rec, const std::string& step) {
  const migrate::JournalStep* s = rec.Step(step);
  return s && s->state == "done";
}

bool StepStarted(const migrate::MigrationRecord& rec, const std::string& step) { return rec.Step(step) != nullptr; }

json StepDetails(const migrate::MigrationRecord& rec, const std::string& step) {
  const migrate::JournalStep* s = rec.Step(step);
  return s ? s->details : json::object();
}

// The cut: the steps that change the proxy and its sessions. A fleet (several proxy hosts, driven by
// playbooks/ansible) runs them on every host itself and records them with `resume --from`.
bool IsCutStep(const std::string& step) {
  return step == "snapshot_sessions" || step == "switch_route" || step == "route_live" || step == "reset_sessions";
}

bool StepExternal(const migrate::MigrationRecord& rec, const std::string& step) {
  return StepDetails(rec, step).value("external", false);
}

}  // namespace

struct TenantMigration::Impl {
  Config config;
  std::unique_ptr<migrate::TenantMover> mover;
  std::unique_ptr<RouteBackend> route;
  std::map<std::string, std::string> api_keys;
  std::mutex api_keys_mu;  // cluster -> API key (resolved lazily)

  // One run's state; rebuilt from the journal on resume/rollback.
  struct Run {
    migrate::MigrationRecord rec;
    migrate::MoveRef ref;
    MigrationReport rep;
    std::unique_ptr<migrate::TenantLock> lock;
    const MigrationOptions* opts = nullptr;
    Clock::time_point t0 = Clock::now();
  };

  // ---- helpers ----

  StatusOr<std::string> ApiKey(const std::string& cluster) {
    std::lock_guard<std::mutex> lock(api_keys_mu);  // preflight's checks run on several threads
    if (auto it = api_keys.find(cluster); it != api_keys.end()) return it->second;
    const ClusterConfig* c = config.FindCluster(cluster);
    if (!c) return Status::BadInput("unknown cluster " + cluster);
    if (c->api_key.empty()) {
      return Status::BadInput("clusters[" + cluster + "] has no api_key_env/api_key_file",
                              "headshift reads the control plane's node list to prove it serves the tenant");
    }
    auto k = ResolveSecret(c->api_key, "clusters[" + cluster + "].api_key");
    if (!k.ok()) return k.status();
    api_keys[cluster] = *k;
    return *k;
  }

  StatusOr<std::unique_ptr<HeadscaleClient>> Control(const std::string& cluster) {
    auto key = ApiKey(cluster);
    if (!key.ok()) return key.status();
    const ClusterConfig* c = config.FindCluster(cluster);
    return std::make_unique<HeadscaleClient>(c->control_url, *key, config.timeouts.http_ms);
  }

  std::vector<SessionHost> Hosts() const {
    std::vector<SessionHost> out;
    for (const auto& h : config.sessions.hosts) out.push_back(SessionHost::FromConfig(h));
    return out;
  }

  // Validates tenant and target and finds the source. BadInput before anything is touched.
  StatusOr<std::string> Source(const std::string& tenant, const std::string& to) {
    if (tenant.empty()) return Status::BadInput("empty tenant name");
    if (!config.FindCluster(to)) {
      return Status::BadInput("unknown target cluster '" + to + "'", "use one of: " + config.ClusterIds());
    }
    auto where = mover->LocateTenant(tenant);
    if (!where.ok()) return where.status();
    if (!where->has_value()) {
      return Status::BadInput("unknown tenant '" + tenant + "': no cluster holds a user of that name",
                              "check the name with `headshift route show` or headscale's `users list`");
    }
    if (**where == to) {
      return Status::BadInput("tenant '" + tenant + "' is already on cluster " + to, "pick another target cluster");
    }
    return **where;
  }

  // The tenant's client addresses (as CIDRs) and the addresses it shares with other tenants.
  struct ClientSelection {
    std::vector<std::string> selected;                         // CIDR texts to reset
    std::map<std::string, std::vector<std::string>> shared;    // address -> other tenants
  };

  StatusOr<ClientSelection> Clients(const std::string& tenant, const std::string& cluster, bool allow_shared) {
    auto ours = mover->PublicClientAddresses(tenant, cluster);
    if (!ours.ok()) return ours.status();
    auto load = mover->Load();
    if (!load.ok()) return load.status();
    std::map<std::string, std::vector<std::string>> owners;  // address -> other tenants using it
    std::set<std::string> our_set(ours->begin(), ours->end());
    for (const auto& [cl, tenants] : load->devices) {
      for (const auto& [other, devices] : tenants) {
        if (other == tenant || devices == 0) continue;
        auto theirs = mover->PublicClientAddresses(other, cl);
        if (!theirs.ok()) return theirs.status();
        for (const auto& a : *theirs) {
          if (our_set.count(a)) owners[a].push_back(other);
        }
      }
    }
    ClientSelection sel;
    sel.shared = owners;
    for (const auto& a : *ours) {
      if (owners.count(a) && !allow_shared) continue;
      sel.selected.push_back(a);
    }
    if (auto it = config.tenants.find(tenant); it != config.tenants.end()) {
      for (const auto& c : it->second.extra_cidrs) sel.selected.push_back(c);
    }
    return sel;
  }

  // Starts a step in the journal, runs it, records its outcome and timing. A crash injected after
  // the step happens here.
  Status Step(Run& run, const std::string& name, const std::function<StatusOr<json>()>& body,
              const json& start_details = json::object()) {
    run.rep.step = name;
    if (run.opts->progress) run.opts->progress(run.ref.tenant, name, false, 0);
    HS_RETURN_IF_ERROR(mover->journal().StartStep(run.rec, name, start_details));
    auto t0 = Clock::now();
    StatusOr<json> r = body();
    double ms = MsSince(t0);
    run.rep.timings_ms[name] = ms;
    if (!r.ok()) {
      (void)mover->journal().FinishStep(run.rec, name, "failed",
                                        {{"error", r.status().message()}, {"ms", ms}});
      return r.status().WithContext(name);
    }
    json details = *r;
    details["ms"] = ms;
    HS_RETURN_IF_ERROR(mover->journal().FinishStep(run.rec, name, "done", details));
    // Keep the in-memory record in step with the journal (later steps read earlier details).
    auto fresh = mover->journal().Get(run.rec.id);
    if (fresh.ok()) run.rec = *fresh;
    if (run.opts->progress) run.opts->progress(run.ref.tenant, name, true, ms);
    MaybeCrashAfter(name);
    return Status::Ok();
  }

  // ---- preflight (read-only) ----

  // What reloading `target` would cost now (plan/preflight): whether a reload is expected (the
  // target caches nodes, so copied rows need one), whether it restarts the control plane, and the
  // other tenants' devices online there (unknown, never 0, when its API cannot be read).
  TargetRestartReport PlanTargetRestart(const std::string& tenant, const ClusterConfig& target) {
    TargetRestartReport tr;
    tr.cluster = target.id;
    tr.planned = true;
    tr.drops_sessions = !target.reload_command.empty() && target.reload_drops_sessions;
    tr.reload_needed = target.cached_nodes && !target.reload_command.empty();
    tr.restarted = tr.reload_needed && tr.drops_sessions;
    if (!tr.drops_sessions) return tr;
    CountOtherTenants(tenant, target.id, tr);
    return tr;
  }

  // Fills tr.devices/tenants with the other tenants' devices online on `cluster` now (or the
  // reason they are unknown); returns them for a later wait.
  std::optional<OnlineDevices> CountOtherTenants(const std::string& tenant, const std::string& cluster,
                                                 TargetRestartReport& tr) {
    auto api = Control(cluster);
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

  // Keeps only the tenants whose rows live on `cluster` (the database's view). A control plane still
  // lists a tenant that just moved away as online during its disconnect grace period (headscale:
  // 10 s), yet those devices are on another cluster already and a restart does not touch them. When
  // the database cannot say, the count is kept as it is (an overcount, never an undercount).
  void KeepResidentTenants(const std::string& cluster, TargetRestartReport& tr, OnlineDevices* online) {
    if (!tr.devices) return;
    auto load = mover->Load();
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

  // The target_restart risk (and, with --no-target-restart, the refusal) of a planned reload.
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

  // Control planes: same Noise key, reachable; the target can be made to see new rows, and what
  // that reload costs (a restart: the target's other tenants' online devices reconnect); the
  // source's online devices (when `want_online`). Problems and risks in a fixed order.
  struct ControlPlanes {
    std::vector<std::string> problems;
    std::vector<Risk> risks;
    std::optional<json> online;
    std::optional<TargetRestartReport> restart;
  };
  ControlPlanes CheckControlPlanes(const std::string& tenant, const std::string& from, const std::string& to,
                                   bool want_online) {
    ControlPlanes out;
    const ClusterConfig* target = config.FindCluster(to);
    std::string source_key, target_key;
    for (const std::string& cl : {from, to}) {
      const ClusterConfig* c = config.FindCluster(cl);
      HeadscaleClient hc(c->control_url, "", config.timeouts.http_ms);
      auto k = hc.NoiseKey();
      if (!k.ok()) {
        out.problems.push_back("control plane of cluster " + cl + " unreachable: " + k.status().message());
      } else {
        (cl == from ? source_key : target_key) = *k;
      }
    }
    if (!source_key.empty() && !target_key.empty() && source_key != target_key) {
      std::string msg = "clusters " + from + " and " + to + " use different Noise keys (" + source_key + " vs " +
                        target_key + "): moved clients would fail the handshake";
      out.risks.push_back({"noise_key_mismatch", msg, {{"clusters", json::array({from, to})}}});
      out.problems.push_back(msg + " (fix: give both headscale nodes the same noise.private_key_path)");
    }
    if (target && target->cached_nodes && target->reload_command.empty()) {
      std::string msg = "cluster " + to + " caches nodes (headscale >= 0.27 NodeStore) and has no reload_command: "
                        "it would not serve the copied nodes";
      out.risks.push_back({"no_reload_command", msg, {{"cluster", to}}});
      out.problems.push_back(msg + " (fix: set clusters[" + to + "].reload_command, e.g. [systemctl, restart, headscale])");
    }
    if (target && !target->reload_command.empty()) out.restart = PlanTargetRestart(tenant, *target);
    auto source_api = Control(from);
    if (!source_api.ok()) {
      out.problems.push_back(source_api.status().message());
    } else {
      auto nodes = (*source_api)->ListNodes(tenant);
      if (!nodes.ok()) {
        out.problems.push_back("cluster " + from + " API: " + nodes.status().message());
      } else if (want_online) {
        json online = json::array();
        for (const auto& n : *nodes) {
          if (n.online) online.push_back(n.name);
        }
        out.online = std::move(online);
      }
    }
    if (auto target_api = Control(to); !target_api.ok()) out.problems.push_back(target_api.status().message());
    return out;
  }

  // Everything that can refuse a migration, collected at once. Fills rep (rows, conflicts, risks,
  // route before/after, online devices).
  Status Preflight(const std::string& tenant, const std::string& from, const std::string& to, MigrationReport& rep,
                   bool for_plan, json* online_before, const MigrationOptions& opts) {
    std::vector<std::string> problems;
    // The database plan, the control planes (HTTP) and the session hosts are independent: checked
    // at once (each task has its own connections), then reported in this fixed order.
    struct DbCheck {
      StatusOr<migrate::PreflightReport> pre = Status::Failed("not run");
      migrate::PreflightReport plan;
    };
    auto db_task = std::async(std::launch::async, [&] {
      DbCheck d;
      d.pre = mover->Preflight(tenant, from, to, &d.plan);
      return d;
    });
    auto control_task = std::async(std::launch::async, [&] {
      return CheckControlPlanes(tenant, from, to, online_before != nullptr);
    });
    struct HostCheck {
      Status refusal;  // NoPrivilege stops the preflight
      std::vector<std::string> problems;
    };
    auto hosts_task = std::async(std::launch::async, [&] {
      HostCheck hc;
      auto hosts = Hosts();
      auto opened = OnEachHost<Status>(hosts.size(), [&](size_t i) {
        auto t = SessionTable::Open(hosts[i], for_plan ? SessionTable::Access::kReadOnly : SessionTable::Access::kDestroy);
        return t.ok() ? Status::Ok() : t.status();
      });
      for (size_t i = 0; i < hosts.size(); ++i) {
        if (opened[i].ok()) continue;
        if (opened[i].code() == ExitCode::kNoPrivilege) {
          if (hc.refusal.ok()) hc.refusal = opened[i];
        } else {
          hc.problems.push_back("session host " + hosts[i].name + ": " + opened[i].message());
        }
      }
      return hc;
    });

    DbCheck db = db_task.get();
    const migrate::MovePlan& p = db.pre.ok() ? *db.pre : db.plan;
    rep.layout = p.layout.empty() ? DbLayoutName(config.database.layout) : p.layout;
    for (const auto& t : p.tables) rep.rows[t.table] = t.rows;
    for (const auto& r : p.risks) rep.risks.push_back(Risk{"node_ids", r, nlohmann::json::object()});
    for (const auto& c : p.conflicts) {
      rep.conflicts.push_back(c.ToJson());
      problems.push_back(c.message + (c.fix.empty() ? "" : " (fix: " + c.fix + ")"));
    }
    if (!db.pre.ok() && p.conflicts.empty()) problems.push_back(db.pre.status().message());

    // Route: headshift must own it, and it must point at the source now. A fleet's routes are on its
    // proxy hosts: the playbook checks each one (`headshift route show` there) before the cut.
    rep.route_after = to;
    if (!route) {
      rep.route_before = from;
      rep.warnings.push_back("proxy.kind fleet: the route and the sessions are changed on each proxy host; this "
                             "migration pauses after target_ready for the fleet's cut");
    }
    Status own = route ? route->CheckOwnership(tenant) : Status::Ok();
    if (!own.ok()) problems.push_back(own.message() + (own.hint().empty() ? "" : " (fix: " + own.hint() + ")"));
    auto current = route ? route->Get(tenant) : StatusOr<std::optional<Route>>(std::nullopt);
    if (!route) {
      // nothing to check here
    } else if (!current.ok()) {
      problems.push_back("route of " + tenant + ": " + current.status().message());
    } else if (!current->has_value()) {
      problems.push_back("the proxy has no route for tenant " + tenant +
                         " (fix: `headshift route set " + tenant + " " + from + "` first)");
    } else {
      rep.route_before = (*current)->cluster_id.empty() ? (*current)->backend : (*current)->cluster_id;
      if ((*current)->cluster_id != from) {
        problems.push_back("the route of " + tenant + " points at " + rep.route_before + ", but its rows are on cluster " +
                           from + " (fix: repair the route with `headshift route set " + tenant + " " + from + "`)");
      }
    }

    ControlPlanes cc = control_task.get();
    problems.insert(problems.end(), cc.problems.begin(), cc.problems.end());
    rep.risks.insert(rep.risks.end(), cc.risks.begin(), cc.risks.end());
    if (cc.restart) {
      KeepResidentTenants(to, *cc.restart, nullptr);  // after the database task: one user of the mover at a time
      AddRestartRisk(tenant, *cc.restart, opts.no_target_restart, rep.risks, problems);
    }
    rep.target_restart = cc.restart;
    if (online_before && cc.online) {
      *online_before = *cc.online;
      rep.online_before = static_cast<int64_t>(online_before->size());
    }

    HostCheck hc = hosts_task.get();
    if (!hc.refusal.ok()) return hc.refusal;
    problems.insert(problems.end(), hc.problems.begin(), hc.problems.end());
    if (config.sessions.hosts.empty() && route) {
      rep.risks.push_back({"no_session_hosts",
                           "no sessions.hosts configured: existing connections stay on the source until they drop"});
    }
    if (problems.empty()) return Status::Ok();
    std::string msg = "preflight refused the migration of " + tenant + " from " + from + " to " + to + ":";
    for (const auto& pr : problems) msg += "\n  - " + pr;
    return Status::Refused(msg, "fix the problems above; nothing was changed");
  }

  // ---- the steps ----

  StatusOr<json> DoCopy(Run& run) {
    auto r = mover->Copy(run.ref);
    if (!r.ok()) return r.status();
    for (const auto& t : r->tables) run.rep.rows[t.table] = t.rows;
    const std::string& devices = mover->profile().device_table;
    if (auto it = r->remaps.find(devices); it != r->remaps.end() && !it->second.empty()) {
      run.rep.warnings.push_back(std::to_string(it->second.size()) + " device(s) of " + run.ref.tenant +
                                 " got a new node id on cluster " + run.ref.to + " (" + devices +
                                 ".id was taken there): clients see a new StableNodeID");
    }
    return r->ToJson();
  }

  StatusOr<json> DoVerify(Run& run) {
    auto r = mover->Verify(run.ref);
    if (!r.ok()) return r.status();
    return r->ToJson();
  }

  // Proves the target serves every node key of the tenant. Reloads it only when its API answers
  // without some of them, and at most once. A reload that restarts the control plane
  // (reload_drops_sessions) first counts the other tenants' devices online there, and afterwards
  // waits (timeouts.reconnect_ms) until they are back: that restart is collateral, reported in
  // target_restart, never as 0.
  StatusOr<json> DoTargetReady(Run& run) {
    const std::string& to = run.ref.to;
    const ClusterConfig* target = config.FindCluster(to);
    auto nodes = mover->TenantNodes(run.ref.tenant, to);
    if (!nodes.ok()) return nodes.status();
    std::set<std::string> want;
    for (const auto& n : *nodes) {
      if (!n.deleted && !n.expired) want.insert(n.node_key);
    }
    auto api = Control(to);
    if (!api.ok()) return api.status();
    TargetRestartReport tr;
    tr.cluster = to;
    tr.drops_sessions = !target->reload_command.empty() && target->reload_drops_sessions;
    tr.devices = 0;
    std::optional<OnlineDevices> others;
    bool forbid_restart = run.opts->no_target_restart || run.rec.details.value("no_target_restart", false);
    auto deadline = Clock::now() + std::chrono::milliseconds(config.timeouts.target_ready_ms);
    Clock::time_point reloaded_at;
    size_t missing = want.size();
    std::string last_error;
    for (;;) {
      auto served = (*api)->ListNodes(run.ref.tenant);
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
          others = CountOtherTenants(run.ref.tenant, to, tr);
          if (others) KeepResidentTenants(to, tr, &*others);
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
        reloaded_at = Clock::now();
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
      if (Clock::now() > deadline) {
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
    if (tr.restarted && others && others->count() > 0) {
      Reconnection back = WaitBackOnline(**api, *others, std::chrono::milliseconds(config.timeouts.reconnect_ms),
                                         reloaded_at);
      tr.reconnected = back.reconnected;
      tr.stragglers = back.stragglers;
      tr.reconnect_ms = back.ms;
      if (!back.stragglers.empty()) {
        run.rep.warnings.push_back(std::to_string(back.stragglers.size()) + " device(s) of other tenants dropped by "
                                   "the restart of cluster " + to + " are not back online there yet (see "
                                   "target_restart.stragglers)");
      }
    } else if (tr.restarted) {
      tr.reconnect_ms = MsSince(reloaded_at);
    }
    if (tr.restarted && !tr.devices) {
      run.rep.warnings.push_back("cluster " + to + " was restarted; how many other tenants' devices it dropped is "
                                 "unknown (" + tr.unknown_reason + ")");
    }
    run.rep.target_restart = tr;
    // The copy checked the target cluster's values inside its own transaction; a device may still
    // have registered on the target since, with a tailnet IP or name the copied rows use (headscale
    // allocates from what it has loaded, and the target loads the copied rows only now). Checked
    // again here, before the route flips: a clash stops the move, which is then rolled back.
    auto clashes = mover->TargetCollisions(run.ref);
    if (!clashes.ok()) return clashes.status().WithContext("re-checking cluster " + to + " for collisions");
    if (!clashes->empty()) {
      std::string msg = "cluster " + to + " now has rows that clash with the copied rows of " + run.ref.tenant + ":";
      for (const auto& c : *clashes) {
        run.rep.conflicts.push_back(c.ToJson());
        msg += "\n  - " + c.message;
      }
      return Status::Failed(msg, clashes->front().fix.empty() ? "resolve the clash on cluster " + to + ", then migrate again"
                                                              : clashes->front().fix + "; then migrate again");
    }
    return json{{"node_keys", want.size()}, {"reloaded", tr.reloaded}, {"collisions", 0},
                {"target_restart", tr.ToJson()}};
  }

  StatusOr<json> DoSnapshot(Run& run) {
    auto sel = Clients(run.ref.tenant, run.ref.to, run.opts->allow_shared);
    if (!sel.ok()) return sel.status();
    run.rep.client_addresses = sel->selected;
    run.rep.shared_addresses = sel->shared;
    run.rep.shared_reset = run.opts->allow_shared && !sel->shared.empty();
    json snaps = json::array();
    int64_t total = 0;
    if (sel->selected.empty()) {
      run.rep.warnings.push_back("no public client address known for " + run.ref.tenant +
                                 " (DERP-only devices or none online): no session to reset; devices move at "
                                 "their next reconnect");
    } else {
      auto cidrs = ParseCidrList(sel->selected);
      if (!cidrs.ok()) return cidrs.status();
      auto hosts = Hosts();
      auto taken = OnEachHost<StatusOr<SessionSnapshot>>(hosts.size(),
                                                         [&](size_t i) { return SnapshotSessions(hosts[i], *cidrs); });
      for (size_t i = 0; i < hosts.size(); ++i) {
        const SessionHost& h = hosts[i];
        auto& s = taken[i];
        if (!s.ok()) return s.status().WithContext("session host " + h.name);
        total += static_cast<int64_t>(s->sockets.size());
        run.rep.sessions_by_host[h.name] = {{"selected", s->sockets.size()}};
        snaps.push_back(s->ToJson());
      }
    }
    run.rep.sessions_selected = total;
    json shared = json::object();
    for (const auto& [a, t] : sel->shared) shared[a] = t;
    return json{{"snapshots", snaps}, {"client_addresses", sel->selected}, {"shared", shared},
                {"selected", total}, {"allow_shared", run.opts->allow_shared}};
  }

  StatusOr<json> DoSwitchRoute(Run& run) {
    // A crashed earlier attempt may already have flipped the route: keep the route it found.
    json earlier = StepDetails(run.rec, "switch_route");
    auto change = route->Set(run.ref.tenant, run.ref.to);
    if (!change.ok()) return change.status();
    json cj = change->ToJson();
    if (!change->changed && earlier.contains("before")) cj = RestoreChangeFrom(run, earlier).ToJson();
    run.rep.route_after = run.ref.to;
    return json{{"change", cj}};
  }

  // The RouteChange that undoes the flip, built from what switch_route recorded before writing.
  RouteChange RestoreChangeFrom(const Run& run, const json& details) {
    RouteChange c;
    c.tenant = run.ref.tenant;
    c.new_cluster = run.ref.to;
    c.new_backend = config.FindCluster(run.ref.to)->backend;
    c.changed = true;
    const json& b = details["before"];
    if (b.is_object() && b.contains("backend")) c.previous_backend = b["backend"].get<std::string>();
    if (b.is_object() && b.contains("cluster_id") && !b["cluster_id"].get<std::string>().empty()) {
      c.previous_cluster = b["cluster_id"].get<std::string>();
    }
    return c;
  }

  json RouteBefore(const std::string& tenant) {
    if (!route) return json::object();
    auto r = route->Get(tenant);
    if (!r.ok() || !r->has_value()) return json::object();
    return (*r)->ToJson();
  }

  StatusOr<json> DoRouteLive(Run& run) {
    HS_RETURN_IF_ERROR(route->WaitLive(run.ref.tenant, run.ref.to,
                                       std::chrono::milliseconds(config.timeouts.route_live_ms)));
    return json::object();
  }

  StatusOr<json> DoResetSessions(Run& run) {
    json snaps = StepDetails(run.rec, "snapshot_sessions")["snapshots"];
    std::set<std::string> shared;
    for (const auto& [a, t] : run.rep.shared_addresses) shared.insert(a);
    json per_host = json::object();
    TerminationReport total;
    if (snaps.is_array()) {
      auto hosts = Hosts();
      std::vector<std::pair<SessionHost, SessionSnapshot>> work;
      for (const auto& sj : snaps) {
        auto snap = SessionSnapshot::FromJson(sj);
        if (!snap.ok()) return snap.status();
        auto host = std::find_if(hosts.begin(), hosts.end(), [&](const SessionHost& h) { return h.name == snap->host; });
        if (host == hosts.end()) return Status::Failed("snapshot names unknown session host " + snap->host);
        work.emplace_back(*host, std::move(snap).value());
      }
      TerminatorOptions pacing;
      pacing.resets_per_second = run.opts->reset_rate >= 0 ? run.opts->reset_rate : config.sessions.reset_rate;
      // Every session host at once: a tenant's devices behind different proxies are cut together.
      auto reports = OnEachHost<StatusOr<TerminationReport>>(
          work.size(), [&](size_t i) { return KillSnapshot(work[i].first, work[i].second, pacing); });
      for (size_t i = 0; i < work.size(); ++i) {
        const SessionHost* host = &work[i].first;
        auto& rep = reports[i];
        if (!rep.ok()) return rep.status().WithContext("session host " + host->name);
        for (const auto& rec : rep->sockets) {
          if (rec.outcome == SessionOutcome::kReset && shared.count(rec.socket.Remote().addr.Unmapped().ToString())) {
            ++run.rep.sessions_collateral;
          }
        }
        per_host[host->name] = {{"selected", rep->selected}, {"reset", rep->reset}, {"gone", rep->gone},
                                {"failed", rep->failed}};
        total.Merge(*rep);
      }
    }
    run.rep.sessions_by_host = per_host;
    run.rep.sessions_reset = static_cast<int64_t>(total.reset);
    run.rep.sessions_gone = static_cast<int64_t>(total.gone);
    run.rep.sessions_failed = static_cast<int64_t>(total.failed);
    if (total.failed > 0) {
      run.rep.warnings.push_back(std::to_string(total.failed) + " session(s) could not be reset; those clients move "
                                 "at their next reconnect");
    }
    return json{{"reset", total.reset}, {"gone", total.gone}, {"failed", total.failed},
                {"collateral", run.rep.sessions_collateral}, {"hosts", per_host}};
  }

  StatusOr<json> DoReconnected(Run& run) {
    json before = StepDetails(run.rec, "preflight")["online_before"];
    std::set<std::string> want;
    if (before.is_array()) {
      for (const auto& n : before) want.insert(n.get<std::string>());
    }
    run.rep.online_before = static_cast<int64_t>(want.size());
    auto api = Control(run.ref.to);
    if (!api.ok()) return api.status();
    auto nodes = mover->TenantNodes(run.ref.tenant, run.ref.to);
    if (!nodes.ok()) return nodes.status();
    // Devices whose every public address was spared (shared with another tenant) keep their
    // session to the source until they reconnect on their own: not expected back yet.
    json snap = StepDetails(run.rec, "snapshot_sessions");
    std::set<std::string> spared_addrs;
    if (!snap.value("allow_shared", false) && snap.contains("shared")) {
      for (auto it = snap["shared"].begin(); it != snap["shared"].end(); ++it) spared_addrs.insert(it.key());
    }
    run.rep.spared.clear();
    for (const auto& n : *nodes) {
      bool any_public = false, all_spared = true;
      for (const auto& e : n.endpoints) {
        if (!migrate::IsPublicClientAddress(e.ip)) continue;
        any_public = true;
        if (!spared_addrs.count(e.ip)) all_spared = false;
      }
      if (any_public && all_spared && want.erase(n.given_name)) run.rep.spared.push_back(n.given_name);
    }
    auto deadline = Clock::now() + std::chrono::milliseconds(config.timeouts.reconnect_ms);
    std::set<std::string> online, served_keys;
    for (;;) {
      auto served = (*api)->ListNodes(run.ref.tenant);
      if (served.ok()) {
        online.clear();
        served_keys.clear();
        for (const auto& n : *served) {
          served_keys.insert(n.node_key);
          if (n.online) online.insert(n.name);
        }
        bool all = std::all_of(want.begin(), want.end(), [&](const std::string& n) { return online.count(n) > 0; });
        if (all) break;
      }
      if (Clock::now() > deadline) break;
      // Each poll lists every node of the tenant; polling harder steals CPU from the reconnecting
      // clients when they share the host's CPUs (as in the sandbox).
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    run.rep.reconnected = 0;
    run.rep.stragglers.clear();
    for (const auto& n : want) {
      if (online.count(n)) ++run.rep.reconnected;
      else run.rep.stragglers.push_back(n);
    }
    run.rep.reauth = 0;
    for (const auto& n : *nodes) {
      if (!n.deleted && !n.expired && !served_keys.count(n.node_key)) ++run.rep.reauth;
    }
    if (!run.rep.stragglers.empty()) {
      run.rep.warnings.push_back(std::to_string(run.rep.stragglers.size()) + " device(s) online before the cut are "
                                 "not back on cluster " + run.ref.to + " yet (see stragglers)");
    }
    return json{{"online_before", run.rep.online_before}, {"reconnected", run.rep.reconnected},
                {"spared", run.rep.spared},
                {"stragglers", run.rep.stragglers}, {"reauth", run.rep.reauth}};
  }

  StatusOr<json> DoCatchUp(Run& run) {
    auto r = mover->CatchUp(run.ref, migrate::ConflictPolicy::kReport);
    if (!r.ok()) return r.status();
    for (const auto& c : r->conflicts) {
      // The versions come masked from CatchUp (credential columns never leave it in clear).
      std::string cols = c.differing_columns.empty() ? "" : " (columns differ: " + migrate::JoinStrings(c.differing_columns, ", ") + ")";
      run.rep.conflicts.push_back({{"table", c.table}, {"source_id", c.source_id}, {"target_id", c.target_id},
                                   {"message", c.table + " row " + std::to_string(c.source_id) + ": " + c.what + cols},
                                   {"differing_columns", c.differing_columns},
                                   {"source_version", c.source_version}, {"target_version", c.target_version}});
    }
    if (!r->conflicts.empty()) {
      run.rep.warnings.push_back(std::to_string(r->conflicts.size()) +
                                 " row(s) changed on both sides after the copy: the target's version was kept, both "
                                 "versions are in `conflicts` and the journal");
    }
    return r->ToJson();
  }

  StatusOr<json> DoComplete(Run& run) {
    // Split: removes the source rows (archived first). Shared: the rows already moved; Retire
    // closes the copy record and drops its per-row hashes.
    auto r = mover->Retire(run.ref, run.opts->archive_on_retire);
    if (!r.ok()) return r.status();
    return r->ToJson();
  }

  // The tenant lock lives on dedicated connections: if one died (PostgreSQL restarted, the session was
  // terminated, an idle kill), another migrate/resume/rollback of the tenant can start. Checked before
  // every step and before a rollback; once lost, nothing more is changed (a rollback too could race).
  Status CheckLock(Run& run, const std::string& next) {
    if (!run.lock || run.lock->Held()) return Status::Ok();
    std::string msg = "migration " + run.rec.id + " lost the lock of tenant " + run.ref.tenant + " before " + next +
                      " (a lock connection to PostgreSQL was closed); stopped without changing anything more";
    (void)mover->journal().SetState(run.rec, "needs_operator", {{"error", msg}, {"step", next}});
    run.rep.state = "needs_operator";
    return Status::NeedsOperator(msg, "make sure no other headshift is working on " + run.ref.tenant +
                                          " (`headshift status " + run.ref.tenant + "`), then run `headshift resume " +
                                          run.rec.id + "`");
  }

  // ---- rollback ----

  Status Undo(Run& run, const std::string& reason) {
    HS_RETURN_IF_ERROR(CheckLock(run, "rollback"));
    const auto& rec = run.rec;
    bool copied = StepStarted(rec, "copy");
    // Cut steps a fleet ran on its proxy hosts are undone there (playbooks/ansible rollback_tenant.yml,
    // before this rollback): this host has no route to restore.
    bool external_cut = !route || StepExternal(rec, "switch_route");
    bool switched = StepStarted(rec, "switch_route") && !external_cut;
    bool sessions_moved = StepStarted(rec, "reset_sessions") && !external_cut;
    bool split = config.database.layout == DbLayout::kSplit;
    json details{{"reason", reason}};
    if (external_cut && StepStarted(rec, "switch_route")) {
      details["route"] = "external";
      run.rep.warnings.push_back("the route and sessions were changed on the proxy hosts (fleet): restore them there "
                                 "(playbooks/ansible/rollback_tenant.yml does, before this rollback)");
    }
    auto t0 = Clock::now();
    auto rows_back = [&]() -> Status {
      if (!copied) return Status::Ok();
      migrate::RollbackOptions ro;
      ro.discard_target_changes = true;  // state the target wrote for devices that had moved
      auto r = mover->Rollback(run.ref, ro);
      if (!r.ok()) return r.status();
      details["rows"] = r->ToJson();
      return Status::Ok();
    };
    auto route_back = [&]() -> Status {
      if (!switched) return Status::Ok();
      json sw = StepDetails(rec, "switch_route");
      RouteChange change;
      if (sw.contains("change")) {
        auto c = RouteChange::FromJson(sw["change"]);
        if (!c.ok()) return c.status();
        change = *c;
        if (!change.changed && sw.contains("before")) change = RestoreChangeFrom(run, sw);
      } else {
        change = RestoreChangeFrom(run, sw);
      }
      HS_RETURN_IF_ERROR(route->Restore(change));
      if (change.previous_cluster) {
        Status live = route->WaitLive(run.ref.tenant, *change.previous_cluster,
                                      std::chrono::milliseconds(config.timeouts.route_live_ms));
        if (!live.ok()) return live;
      }
      details["route"] = "restored";
      return Status::Ok();
    };
    auto sessions_back = [&]() -> Status {
      if (!sessions_moved) return Status::Ok();
      // Clients reconnected through the new route: reset them again so they return.
      auto sel = Clients(run.ref.tenant, split ? run.ref.to : run.ref.from, run.opts->allow_shared);
      if (!sel.ok()) return sel.status();
      if (sel->selected.empty()) return Status::Ok();
      auto cidrs = ParseCidrList(sel->selected);
      if (!cidrs.ok()) return cidrs.status();
      int64_t reset = 0;
      for (const auto& h : Hosts()) {
        SessionSelector s;
        s.ports = h.ports;
        s.clients = *cidrs;
        auto r = KillSessions(h, s, false);
        if (!r.ok()) return r.status().WithContext("session host " + h.name);
        reset += static_cast<int64_t>(r->reset);
      }
      details["sessions_reset"] = reset;
      run.rep.sessions_reset = reset;
      return Status::Ok();
    };
    // Shared layout: the source control plane only accepts a device whose row carries its
    // cluster_id, so rows go back first. Split: the source rows are still there, so the target copy
    // is removed last (devices never meet a cluster without their rows).
    std::vector<std::function<Status()>> order =
        split ? std::vector<std::function<Status()>>{route_back, sessions_back, rows_back}
              : std::vector<std::function<Status()>>{rows_back, route_back, sessions_back};
    (void)mover->journal().StartStep(run.rec, "rollback", {{"reason", reason}});
    for (auto& f : order) {
      Status st = f();
      if (!st.ok()) {
        (void)mover->journal().FinishStep(run.rec, "rollback", "failed", {{"error", st.message()}});
        (void)mover->journal().SetState(run.rec, "needs_operator", {{"rollback_error", st.message()}});
        run.rep.state = "needs_operator";
        return Status::NeedsOperator("rollback of " + run.rec.id + " failed: " + st.message(),
                                     "fix the cause, then run `headshift rollback " + run.rec.id + "` again");
      }
    }
    run.rep.timings_ms["rollback"] = MsSince(t0);
    (void)mover->journal().FinishStep(run.rec, "rollback", "done", details);
    HS_RETURN_IF_ERROR(mover->journal().SetState(run.rec, "rolled_back", details));
    run.rep.state = "rolled_back";
    run.rep.route_after = run.rep.route_before.empty() ? run.ref.from : run.rep.route_before;
    return Status::Ok();
  }

  // ---- driving ----

  // Runs the steps from `first` on. Failures before the cut completes roll back automatically.
  // Stops the run after `after` (journal state paused); `resume` continues at `next`. Exit 0.
  Status Pause(Run& run, const std::string& after, const std::string& next) {
    json details{{"paused_after", after}, {"next_step", next}};
    if (!route && IsCutStep(next)) {
      // What each proxy host of the fleet selects: the tenant's public client addresses (the rows are
      // on the target now), shared ones spared unless --allow-shared, as DoSnapshot would. Kept in the
      // journal: a later run of the playbook (resume, rollback) reads them from `status`.
      auto sel = Clients(run.ref.tenant, run.ref.to, run.opts->allow_shared);
      if (!sel.ok()) return sel.status().WithContext("client addresses for the fleet's cut");
      run.rep.client_addresses = sel->selected;
      run.rep.shared_addresses = sel->shared;
      details["client_addresses"] = sel->selected;
      details["shared_addresses"] = sel->shared;
      run.rep.warnings.push_back("run the cut on every proxy host (`route set --snapshot-out FILE --client … --port …`, "
                                 "then `sessions kill --snapshot-in FILE`), then `headshift resume " + run.rec.id +
                                 " --from reconnected` (playbooks/ansible/migrate_tenant.yml does all of it)");
    }
    HS_RETURN_IF_ERROR(mover->journal().SetState(run.rec, "paused", details));
    run.rep.state = "paused";
    run.rep.paused_after = after;
    run.rep.next_step = next;
    spdlog::info("{}: paused after {} (resume continues at {})", run.rec.id, after, next);
    return Status::Ok();
  }

  Status RunFrom(Run& run, size_t first) {
    const auto& steps = MigrationSteps();
    for (size_t i = first; i < steps.size(); ++i) {
      const std::string& name = steps[i];
      if (name == "preflight") continue;  // runs before the journal exists
      if (!route && IsCutStep(name) && !StepDone(run.rec, name)) {
        // proxy.kind fleet: the cut is the proxy hosts' (the playbook records it with resume --from).
        return Pause(run, i > 0 ? steps[i - 1] : "", name);
      }
      HS_RETURN_IF_ERROR(CheckLock(run, name));
      Status st;
      if (name == "copy") st = Step(run, name, [&] { return DoCopy(run); });
      else if (name == "verify") st = Step(run, name, [&] { return DoVerify(run); });
      else if (name == "target_ready") st = Step(run, name, [&] { return DoTargetReady(run); });
      else if (name == "snapshot_sessions") st = Step(run, name, [&] { return DoSnapshot(run); });
      else if (name == "switch_route") {
        json before = StepDetails(run.rec, "switch_route").value("before", json());
        if (before.is_null() || before.empty()) before = RouteBefore(run.ref.tenant);
        st = Step(run, name, [&] { return DoSwitchRoute(run); }, {{"before", before}});
      } else if (name == "route_live") st = Step(run, name, [&] { return DoRouteLive(run); });
      else if (name == "reset_sessions") st = Step(run, name, [&] { return DoResetSessions(run); });
      else if (name == "reconnected") st = Step(run, name, [&] { return DoReconnected(run); });
      else if (name == "catch_up") st = Step(run, name, [&] { return DoCatchUp(run); });
      else if (name == "complete") st = Step(run, name, [&] { return DoComplete(run); });
      else continue;  // preflight runs before the journal exists
      if (st.ok()) {
        if (name == run.opts->until && i + 1 < steps.size()) return Pause(run, name, steps[i + 1]);
        continue;
      }
      if (i <= StepIndex("reset_sessions")) {
        spdlog::error("{}: {}; rolling back", run.rec.id, st.message());
        Status undo = Undo(run, st.message());
        if (!undo.ok()) return undo;
        return Status::Failed("migration " + run.rec.id + " failed at " + name + " and was rolled back: " +
                                  st.message(),
                              st.hint());
      }
      // After the cut the devices live on the target: never move them back on our own.
      (void)mover->journal().SetState(run.rec, "needs_operator", {{"error", st.message()}, {"step", name}});
      run.rep.state = "needs_operator";
      return Status::NeedsOperator("migration " + run.rec.id + " stopped at " + name + ": " + st.message(),
                                   "fix the cause and run `headshift resume " + run.rec.id + "`");
    }
    HS_RETURN_IF_ERROR(mover->journal().SetState(run.rec, "complete",
                                                 {{"timings_ms", run.rep.ToJson()["timings_ms"]}}));
    run.rep.state = "complete";
    return Status::Ok();
  }

  // resume --from: records the cut steps in [first, target) as done outside headshift, then `first`
  // = target. Only cut steps can be skipped; a target at or before `first` changes nothing (a re-run
  // of the same playbook converges).
  Status SkipExternal(Run& run, size_t& first, size_t target) {
    const auto& steps = MigrationSteps();
    if (target >= steps.size()) return Status::BadInput("resume --from: unknown step", "use one of the steps of `headshift status ID`");
    if (target <= first) return Status::Ok();
    for (size_t i = first; i < target; ++i) {
      if (!IsCutStep(steps[i])) {
        return Status::BadInput("resume --from " + steps[target] + " would skip " + steps[i] +
                                    ", which headshift must run itself (only the cut — snapshot_sessions, "
                                    "switch_route, route_live, reset_sessions — can be done outside)",
                                "run `headshift resume " + run.rec.id + " --until " + steps[i] + "` first, or drop --from");
      }
    }
    for (size_t i = first; i < target; ++i) {
      json d{{"external", true}, {"recorded_by", "resume --from " + steps[target]}};
      HS_RETURN_IF_ERROR(mover->journal().StartStep(run.rec, steps[i], d));
      HS_RETURN_IF_ERROR(mover->journal().FinishStep(run.rec, steps[i], "done", d));
      run.rep.external_steps.push_back(steps[i]);
    }
    if (auto fresh = mover->journal().Get(run.rec.id); fresh.ok()) run.rec = *fresh;
    if (run.rep.route_after.empty() || StepStarted(run.rec, "switch_route")) run.rep.route_after = run.ref.to;
    first = target;
    return Status::Ok();
  }

  // Loads migration `id` from the journal into `run`.
  Status Load(const std::string& id, Run& run) {
    auto rec = mover->journal().Get(id);
    if (!rec.ok()) return rec.status();
    run.rec = *rec;
    FillFromJournal(run);
    return Status::Ok();
  }

  // Takes the tenant's migration lock for `run` (Refused naming the holder if another runs).
  Status TakeLock(Run& run) {
    auto lock = mover->Lock(run.rec.tenant, run.rec.from, run.rec.to, run.rec.id);
    if (!lock.ok()) return lock.status();
    run.lock = std::move(lock).value();
    return Status::Ok();
  }

  void FillFromJournal(Run& run) {
    const auto& rec = run.rec;
    run.rep.id = rec.id;
    run.rep.tenant = rec.tenant;
    run.rep.from = rec.from;
    run.rep.to = rec.to;
    run.rep.layout = DbLayoutName(config.database.layout);
    run.rep.state = rec.state;
    run.ref = {rec.id, rec.tenant, rec.from, rec.to};
    if (const auto* last = rec.LastStep()) run.rep.step = last->step;
    for (const auto& s : rec.steps) {
      if (s.details.contains("ms")) run.rep.timings_ms[s.step] = s.details["ms"].get<double>();
    }
    json copy = StepDetails(rec, "copy");
    if (copy.contains("tables")) {
      for (const auto& t : copy["tables"]) run.rep.rows[t.value("table", "")] = t.value("rows", 0);
    }
    json pre = StepDetails(rec, "preflight");
    run.rep.route_before = pre.value("route_before", "");
    if (pre.contains("online_before")) run.rep.online_before = static_cast<int64_t>(pre["online_before"].size());
    json snap = StepDetails(rec, "snapshot_sessions");
    run.rep.sessions_selected = snap.value("selected", 0);
    if (snap.contains("client_addresses")) run.rep.client_addresses = snap["client_addresses"].get<std::vector<std::string>>();
    if (snap.contains("shared")) {
      for (auto it = snap["shared"].begin(); it != snap["shared"].end(); ++it) {
        run.rep.shared_addresses[it.key()] = it.value().get<std::vector<std::string>>();
      }
    }
    json reset = StepDetails(rec, "reset_sessions");
    run.rep.sessions_reset = reset.value("reset", 0);
    run.rep.sessions_gone = reset.value("gone", 0);
    run.rep.sessions_failed = reset.value("failed", 0);
    run.rep.sessions_collateral = reset.value("collateral", 0);
    json ready = StepDetails(rec, "target_ready");
    if (ready.contains("target_restart")) {
      run.rep.target_restart = TargetRestartReport::FromJson(ready["target_restart"]);
      run.rep.reloaded_target = run.rep.target_restart->reloaded;
    }
    json rc = StepDetails(rec, "reconnected");
    run.rep.reconnected = rc.value("reconnected", 0);
    run.rep.reauth = rc.value("reauth", 0);
    if (rc.contains("stragglers")) run.rep.stragglers = rc["stragglers"].get<std::vector<std::string>>();
    if (rc.contains("spared")) run.rep.spared = rc["spared"].get<std::vector<std::string>>();
    if (StepStarted(rec, "switch_route")) run.rep.route_after = rec.to;
    run.rep.external_steps.clear();
    for (const auto& s : rec.steps) {
      if (s.details.value("external", false)) run.rep.external_steps.push_back(s.step);
    }
    if (run.rep.client_addresses.empty() && rec.details.contains("client_addresses")) {
      run.rep.client_addresses = rec.details["client_addresses"].get<std::vector<std::string>>();
    }
    if (rec.state == "paused") {
      run.rep.paused_after = rec.details.value("paused_after", "");
      run.rep.next_step = rec.details.value("next_step", "");
    }
  }
};

TenantMigration::TenantMigration(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
TenantMigration::~TenantMigration() = default;

StatusOr<std::unique_ptr<TenantMigration>> TenantMigration::Open(const Config& config) {
  auto impl = std::make_unique<Impl>();
  impl->config = config;
  auto mover = migrate::TenantMover::Open(impl->config);
  if (!mover.ok()) return mover.status();
  impl->mover = std::move(mover).value();
  if (impl->config.proxy.kind != ProxyKind::kFleet) {  // fleet: no route on this host (route stays null)
    auto route = MakeRouteBackend(impl->config);
    if (!route.ok()) return route.status();
    impl->route = std::move(route).value();
  }
  return std::unique_ptr<TenantMigration>(new TenantMigration(std::move(impl)));
}

MigrationOutcome TenantMigration::Plan(const std::string& tenant, const std::string& to, const MigrationOptions& opts) {
  MigrationOutcome out;
  MigrationReport& rep = out.report;
  rep.tenant = tenant;
  rep.to = to;
  rep.state = "planned";
  auto t0 = Clock::now();
  auto from = impl_->Source(tenant, to);
  if (!from.ok()) {
    out.status = from.status();
    return out;
  }
  rep.from = *from;
  json online;
  Status pre = impl_->Preflight(tenant, *from, to, rep, /*for_plan=*/true, &online, opts);
  // The sessions a migration would reset now, per host (read-only).
  auto sel = impl_->Clients(tenant, *from, opts.allow_shared);
  if (sel.ok()) {
    rep.client_addresses = sel->selected;
    rep.shared_addresses = sel->shared;
    rep.shared_reset = opts.allow_shared && !sel->shared.empty();
    if (!sel->shared.empty() && !opts.allow_shared) {
      rep.risks.push_back({"shared_addresses",
                           std::to_string(sel->shared.size()) +
                               " client address(es) are shared with other tenants: their sessions are spared, so "
                               "those devices move only at their next reconnect (--allow-shared resets them, with "
                               "collateral)",
                           {{"addresses", static_cast<int64_t>(sel->shared.size())}}});
    }
    if (sel->selected.empty()) {
      rep.risks.push_back({"no_client_addresses", "no public client address known for " + tenant + ": no session would be reset"});
    } else if (auto cidrs = ParseCidrList(sel->selected); cidrs.ok()) {
      for (const auto& h : impl_->Hosts()) {
        auto table = SessionTable::Open(h, SessionTable::Access::kReadOnly);
        if (!table.ok()) continue;  // reported by preflight
        SessionSelector s;
        s.ports = h.ports;
        s.clients = *cidrs;
        auto listed = (*table)->List(s);
        if (listed.ok()) {
          rep.sessions_by_host[h.name] = {{"would_reset", listed->selected}};
          rep.sessions_selected += static_cast<int64_t>(listed->selected);
        }
      }
    }
  } else {
    rep.warnings.push_back("client addresses: " + sel.status().message());
  }
  rep.timings_ms["total"] = MsSince(t0);
  if (!pre.ok()) {
    rep.state = "would_refuse";
    out.status = pre;
  }
  return out;
}

MigrationOutcome TenantMigration::Migrate(const std::string& tenant, const std::string& to,
                                          const MigrationOptions& opts) {
  MigrationOutcome out;
  Impl::Run run;
  run.opts = &opts;
  run.rep.tenant = tenant;
  run.rep.to = to;
  // One unfinished migration per tenant: a paused or stopped one is resumed or rolled back, never
  // overtaken by a new one (its rows may be on both clusters).
  if (auto earlier = impl_->mover->journal().List(tenant); earlier.ok()) {
    for (const auto& m : *earlier) {
      if (m.state == "paused" || m.state == "needs_operator") {
        out.status = Status::Refused("tenant " + tenant + " has an unfinished migration " + m.id + " (" + m.from +
                                         " -> " + m.to + ", " + m.state + ")",
                                     "continue it with `headshift resume " + m.id + "` or undo it with `headshift rollback " +
                                         m.id + "`");
        out.report = run.rep;
        return out;
      }
    }
  }
  auto from = impl_->Source(tenant, to);
  if (!from.ok()) {
    out.status = from.status();
    out.report = run.rep;
    return out;
  }
  run.rep.from = *from;
  std::string id = migrate::Journal::NewMigrationId();
  run.rep.id = id;
  auto lock = impl_->mover->Lock(tenant, *from, to, id);
  if (!lock.ok()) {
    out.status = lock.status();
    out.report = run.rep;
    return out;
  }
  run.lock = std::move(lock).value();
  if (opts.progress) opts.progress(tenant, "preflight", false, 0);
  auto t_pre = Clock::now();
  json online;
  Status pre = impl_->Preflight(tenant, *from, to, run.rep, /*for_plan=*/false, &online, opts);
  double pre_ms = MsSince(t_pre);
  run.rep.timings_ms["preflight"] = pre_ms;
  if (!pre.ok()) {
    run.rep.state = "refused";
    out.status = pre;
    out.report = run.rep;
    return out;
  }
  if (opts.progress) opts.progress(tenant, "preflight", true, pre_ms);
  // First write: the journal.
  auto rec = impl_->mover->journal().Create(tenant, *from, to, id,
                                            {{"layout", run.rep.layout},
                                             {"allow_shared", opts.allow_shared},
                                             {"no_target_restart", opts.no_target_restart}});
  if (!rec.ok()) {
    out.status = rec.status();
    out.report = run.rep;
    return out;
  }
  run.rec = *rec;
  run.ref = {id, tenant, *from, to};
  json risks = json::array();
  for (const auto& r : run.rep.risks) risks.push_back(r.ToJson());
  json pre_details{{"rows", run.rep.rows},
                   {"online_before", online},
                   {"route_before", run.rep.route_before},
                   {"risks", risks},
                   {"ms", pre_ms}};
  Status st = impl_->mover->journal().StartStep(run.rec, "preflight");
  if (st.ok()) st = impl_->mover->journal().FinishStep(run.rec, "preflight", "done", pre_details);
  if (st.ok()) {
    if (auto fresh = impl_->mover->journal().Get(id); fresh.ok()) run.rec = *fresh;
    MaybeCrashAfter("preflight");
    run.rep.state = "running";
    run.rep.target_restart.reset();  // preflight's estimate; target_ready reports what happened
    st = impl_->RunFrom(run, StepIndex("copy"));
  }
  run.rep.timings_ms["total"] = MsSince(run.t0);
  out.status = st;
  out.report = run.rep;
  return out;
}

MigrationOutcome TenantMigration::Resume(const std::string& id, const MigrationOptions& opts) {
  MigrationOutcome out;
  Impl::Run run;
  run.opts = &opts;
  out.status = impl_->Load(id, run);
  if (out.status.ok() && run.rec.state != "complete" && run.rec.state != "rolled_back") {
    out.status = impl_->TakeLock(run);
    if (out.status.ok()) {
      size_t first = 0;
      const auto& steps = MigrationSteps();
      while (first < steps.size() && StepDone(run.rec, steps[first])) ++first;
      if (!opts.from.empty()) out.status = impl_->SkipExternal(run, first, StepIndex(opts.from));
      if (out.status.ok()) {
        spdlog::info("resume {}: continuing at {}", id, first < steps.size() ? steps[first] : "the end");
        (void)impl_->mover->journal().SetState(run.rec, "running");
        run.rep.state = "running";
        run.rep.paused_after.clear();
        run.rep.next_step.clear();
        out.status = impl_->RunFrom(run, std::max<size_t>(first, 1));
      }
      run.rep.timings_ms["total"] = MsSince(run.t0);
    }
  }  // else: complete or rolled back already: converged, nothing to do
  out.report = run.rep;
  return out;
}

MigrationOutcome TenantMigration::Rollback(const std::string& id, const MigrationOptions& opts) {
  MigrationOutcome out;
  Impl::Run run;
  run.opts = &opts;
  out.status = impl_->Load(id, run);
  if (!out.status.ok() || run.rec.state == "rolled_back") {
    out.report = run.rep;
    return out;
  }
  if (run.rec.state == "complete" || StepDone(run.rec, "complete")) {
    out.report = run.rep;
    out.status = Status::Refused("migration " + id + " is complete; it cannot be rolled back",
                                 "move the tenant back with `headshift migrate " + run.rec.tenant + " --to " +
                                     run.rec.from + "`");
    return out;
  }
  out.status = impl_->TakeLock(run);
  if (out.status.ok()) {
    out.status = impl_->Undo(run, "operator requested rollback");
    run.rep.timings_ms["total"] = MsSince(run.t0);
  }
  out.report = run.rep;
  return out;
}

}  // namespace headshift
