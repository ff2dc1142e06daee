// preflight: read-only, every problem at once (exit 3, no journal row, nothing changed): data
// conflicts, the route is headshift's and points at the source, both control planes answer with
// the same Noise key, a cached target has a reload_command (and what a reload would cost the
// target's other tenants), session hosts open with CAP_NET_ADMIN. Records the devices online now.
// It runs before the journal exists: Migrate calls RunPreflight, creates the journal, then records
// the step (StepRunner::RecordBeforeJournal) with PreflightDetails. Nothing to undo.
#include "playbooks/steps/preflight.h"

#include <future>
#include <optional>

#include "dataplane/host_fanout.h"
#include "dataplane/sessions.h"
#include "playbooks/steps/steps.h"
#include "playbooks/target_restart_accounting.h"
#include "playbooks/node_parity_check.h"
#include "playbooks/tenant_control_nodes.h"
#include "playbooks/tenant_policy_move.h"

namespace headshift::steps {

namespace {

using json = nlohmann::json;

// Control planes: same Noise key, reachable; the target can be made to see new rows, and what
// that reload costs (a restart: the target's other tenants' online devices reconnect); the
// source's online devices (when `want_online`). Problems and risks in a fixed order.
struct ControlPlanes {
  std::vector<std::string> problems;
  std::vector<Risk> risks;
  std::optional<json> online;
  std::optional<TargetRestartReport> restart;
};

ControlPlanes CheckControlPlanes(MigrationEnv& env, const std::string& tenant, const std::string& from,
                                 const std::string& to, bool want_online) {
  const Config& config = env.config;
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
  if (target && !target->reload_command.empty()) out.restart = PlanTargetRestart(env, tenant, *target);
  auto source_api = env.Control(from);
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
  if (auto target_api = env.Control(to); !target_api.ok()) out.problems.push_back(target_api.status().message());
  return out;
}

// Session hosts open with the access the migration needs (NoPrivilege stops the preflight).
struct HostCheck {
  Status refusal;
  std::vector<std::string> problems;
};

HostCheck CheckSessionHosts(MigrationEnv& env, bool for_plan) {
  HostCheck hc;
  auto hosts = env.Hosts();
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
}

// Route: headshift must own it, and it must point at the source now. A fleet's routes are on its
// proxy hosts: the playbook checks each one (`headshift route show` there) before the cut.
void CheckRoute(MigrationEnv& env, const std::string& tenant, const std::string& from, const std::string& to,
                MigrationReport& rep, std::vector<std::string>& problems) {
  rep.route_after = to;
  if (!env.route) {
    rep.route_before = from;
    rep.warnings.push_back("proxy.kind fleet: the route and the sessions are changed on each proxy host; this "
                           "migration pauses after target_ready for the fleet's cut");
    return;
  }
  Status own = env.route->CheckOwnership(tenant);
  if (!own.ok()) problems.push_back(own.message() + (own.hint().empty() ? "" : " (fix: " + own.hint() + ")"));
  auto current = env.route->Get(tenant);
  if (!current.ok()) {
    problems.push_back("route of " + tenant + ": " + current.status().message());
  } else if (!current->has_value()) {
    problems.push_back("the proxy has no route for tenant " + tenant + " (fix: `headshift route set " + tenant + " " +
                       from + "` first)");
  } else {
    rep.route_before = (*current)->cluster_id.empty() ? (*current)->backend : (*current)->cluster_id;
    if ((*current)->cluster_id != from) {
      problems.push_back("the route of " + tenant + " points at " + rep.route_before + ", but its rows are on cluster " +
                         from + " (fix: repair the route with `headshift route set " + tenant + " " + from + "`)");
    }
  }
}

}  // namespace

Status RunPreflight(MigrationEnv& env, const std::string& tenant, const std::string& from, const std::string& to,
                    MigrationReport& rep, bool for_plan, json* online_before, const MigrationOptions& opts) {
  std::vector<std::string> problems;
  // The tenant's part of the ACL policy first: it decides which tagged devices are the tenant's
  // (tags it owns), which the database plan then counts and checks.
  auto policy = PlanPolicyMove(env, tenant, from, to);
  if (!policy.ok()) {
    problems.push_back(policy.status().message() +
                       (policy.status().hint().empty() ? "" : " (fix: " + policy.status().hint() + ")"));
  } else {
    rep.policy = policy->ToJson(from, to);
    if (policy->read) {
      env.mover->SetTagOwnership(policy->ownership);
      for (const auto& i : policy->issues) {
        if (i.severity == PolicySeverity::kRefuse) problems.push_back("ACL policy: " + i.ToString());
        else rep.risks.push_back({std::string("policy_") + PolicyIssueKindName(i.kind), i.ToString()});
      }
    } else {
      rep.risks.push_back({"policy_unread", "the ACL policy was not read (" + policy->unread_reason +
                                                "): if the nodes isolate tenants by policy, move the tenant's "
                                                "rules by hand"});
    }
  }
  // The database plan, the control planes (HTTP) and the session hosts are independent: checked
  // at once (each task has its own connections), then reported in this fixed order.
  struct DbCheck {
    StatusOr<migrate::PreflightReport> pre = Status::Failed("not run");
    migrate::PreflightReport plan;
  };
  auto db_task = std::async(std::launch::async, [&] {
    DbCheck d;
    d.pre = env.mover->Preflight(tenant, from, to, &d.plan);
    return d;
  });
  auto control_task = std::async(std::launch::async, [&] {
    return CheckControlPlanes(env, tenant, from, to, online_before != nullptr);
  });
  auto hosts_task = std::async(std::launch::async, [&] { return CheckSessionHosts(env, for_plan); });

  DbCheck db = db_task.get();
  const migrate::MovePlan& p = db.pre.ok() ? *db.pre : db.plan;
  rep.layout = p.layout.empty() ? DbLayoutName(env.config.database.layout) : p.layout;
  for (const auto& t : p.tables) rep.rows[t.table] = t.rows;
  for (const auto& r : p.risks) rep.risks.push_back(Risk{"node_ids", r, json::object()});
  for (const auto& c : p.conflicts) {
    rep.conflicts.push_back(c.ToJson());
    problems.push_back(c.message + (c.fix.empty() ? "" : " (fix: " + c.fix + ")"));
  }
  if (!db.pre.ok() && p.conflicts.empty()) problems.push_back(db.pre.status().message());

  CheckRoute(env, tenant, from, to, rep, problems);

  ControlPlanes cc = control_task.get();
  problems.insert(problems.end(), cc.problems.begin(), cc.problems.end());
  rep.risks.insert(rep.risks.end(), cc.risks.begin(), cc.risks.end());
  if (cc.restart) {
    KeepResidentTenants(env, to, *cc.restart, nullptr);  // after the database task: one user of the mover at a time
    AddRestartRisk(tenant, *cc.restart, opts.no_target_restart, rep.risks, problems);
  }
  rep.target_restart = cc.restart;
  if (online_before && cc.online) {
    *online_before = *cc.online;
    rep.online_before = static_cast<int64_t>(online_before->size());
  }

  // After the database task (one user of the mover at a time): the tenant's devices, for the node
  // parity check (its IPs against the target's prefixes) and its tagged devices' online state.
  auto tenant_nodes = env.mover->TenantNodes(tenant, from);
  if (tenant_nodes.ok()) {
    CheckNodeParity(env, from, to, *tenant_nodes, policy.ok() ? &*policy : nullptr, rep, problems);
    if (online_before && cc.online && HasTaggedDevices(*tenant_nodes)) {
      if (auto api = env.Control(from); api.ok()) {
        auto listed = TenantControlNodes(**api, tenant, *tenant_nodes);
        if (listed.ok()) {
          json online = json::array();
          for (const auto& n : *listed) {
            if (n.online) online.push_back(n.name);
          }
          *online_before = online;
          rep.online_before = static_cast<int64_t>(online.size());
        }
      }
    }
  }

  HostCheck hc = hosts_task.get();
  if (!hc.refusal.ok()) return hc.refusal;
  problems.insert(problems.end(), hc.problems.begin(), hc.problems.end());
  if (env.config.sessions.hosts.empty() && env.route) {
    rep.risks.push_back({"no_session_hosts",
                         "no sessions.hosts configured: existing connections stay on the source until they drop"});
  }
  if (problems.empty()) return Status::Ok();
  std::string msg = "preflight refused the migration of " + tenant + " from " + from + " to " + to + ":";
  for (const auto& pr : problems) msg += "\n  - " + pr;
  return Status::Refused(msg, "fix the problems above; nothing was changed");
}

json PreflightDetails(const MigrationReport& rep, const json& online_before, double ms) {
  json risks = json::array();
  for (const auto& r : rep.risks) risks.push_back(r.ToJson());
  return {{"rows", rep.rows}, {"online_before", online_before}, {"route_before", rep.route_before},
          {"risks", risks}, {"policy", rep.policy}, {"parity", rep.parity}, {"ms", ms}};
}

MigrationStep Preflight() {
  return MigrationStep{
      .name = "preflight",
      .before_journal = true,
  };
}

}  // namespace headshift::steps
