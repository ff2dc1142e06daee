// `headshift sessions list|kill`: list, snapshot or reset a tenant's TCP sessions on the proxy's
// session hosts (dataplane/sessions.h). Everything is validated — values, namespaces, privilege,
// kernel support, snapshot file — before the first socket is reset.
#include <algorithm>
#include <chrono>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include <spdlog/spdlog.h>

#include "cli/command.h"
#include "cli/progress.h"
#include "dataplane/host_fanout.h"
#include "dataplane/sessions.h"
#include "migrate/tenant_mover.h"
#include "playbooks/paced_reset.h"

namespace headshift::cli {
namespace {

struct SessionsFlags {
  std::vector<std::string> hosts, netns, ports, clients, states;
  std::string conntrack_netns, snapshot_in, snapshot_out, tenant;
  bool dry_run = false;
  bool allow_shared = false;
  int max_rounds = 3;
  int64_t rate = -1;  // kill: resets per second per host (0 = all at once; -1 = 0, or the config's with --pace-cluster)
  // kill --snapshot-in on a proxy host of a fleet: pace by the target's view (playbooks/paced_reset.h).
  std::string pace_cluster, pace_tenant;
  int64_t fleet_sockets = 0;  // the tenant's sockets on every proxy host together (0: this host's)
};

// An empty namespace (an unset shell variable) must not fall back to headshift's own namespace.
const CLI::Validator kNamespaceGiven(
    [](std::string& v) {
      return v.empty() ? std::string("empty namespace: give a name from `ip netns list` or a path like /proc/PID/ns/net")
                       : std::string();
    },
    "NAME|PATH");

void AddSelectionFlags(CLI::App* sub, SessionsFlags* f) {
  sub->add_option("--host", f->hosts, "session host(s) from the config (sessions.hosts[].name)")->delimiter(',');
  sub->add_option("--netns", f->netns, "network namespace(s): a name under /run/netns or a path like /proc/PID/ns/net "
                                       "(default: headshift's own)")
      ->check(kNamespaceGiven);
  sub->add_option("--port", f->ports, "the proxy's listen port(s), e.g. 443 or 80,443");
  sub->add_option("--client", f->clients, "tenant client address or CIDR (IPv4/IPv6), repeatable");
  sub->add_option("--tenant", f->tenant, "the tenant's client addresses, read from nodes.endpoints (+ tenants.<t>.extra_cidrs)");
  sub->add_flag("--allow-shared", f->allow_shared, "with --tenant: include addresses other tenants' devices also use");
  sub->add_option("--conntrack-netns", f->conntrack_netns,
                  "namespace doing source NAT in front of the proxy: resolve clients through its conntrack table")
      ->check(kNamespaceGiven);
  sub->add_option("--state", f->states, "TCP states (default: live connections; never listen)");
  sub->add_option("--snapshot-out", f->snapshot_out, "record the selected sessions (tuple, cookie, time) to FILE; "
                                                     "nothing is reset");
}

struct Plan {
  std::vector<SessionHost> hosts;
  SessionSelector selector;                 // ports may be empty (then each host's ports)
  std::vector<SessionSnapshot> snapshots;   // --snapshot-in: one per host, same order
};

// The tenant's public client addresses from the database (migrate/), plus its configured extra
// CIDRs. Addresses another tenant's devices also use are left out unless allow_shared, so a
// --tenant kill never resets another tenant's sessions by default (the migration's guard).
StatusOr<std::vector<std::string>> TenantClientAddresses(Context& ctx, const std::string& tenant, bool allow_shared) {
  auto cfg = ctx.config();
  if (!cfg.ok()) return cfg.status();
  auto mover = migrate::TenantMover::Open(**cfg);
  if (!mover.ok()) return mover.status();
  auto where = (*mover)->LocateTenant(tenant);
  if (!where.ok()) return where.status();
  if (!where->has_value()) return Status::BadInput("unknown tenant '" + tenant + "': no cluster holds a user of that name");
  auto ours = (*mover)->PublicClientAddresses(tenant, **where);
  if (!ours.ok()) return ours.status();
  std::set<std::string> shared;
  if (!allow_shared) {
    auto load = (*mover)->Load();
    if (!load.ok()) return load.status();
    std::set<std::string> mine(ours->begin(), ours->end());
    for (const auto& [cluster, tenants] : load->devices) {
      for (const auto& [other, devices] : tenants) {
        if (other == tenant || devices == 0) continue;
        auto theirs = (*mover)->PublicClientAddresses(other, cluster);
        if (!theirs.ok()) return theirs.status();
        for (const auto& a : *theirs) {
          if (mine.count(a)) shared.insert(a);
        }
      }
    }
  }
  std::vector<std::string> out;
  for (const auto& a : *ours) {
    if (shared.count(a)) {
      spdlog::warn("sessions: sparing {} (also used by another tenant's devices; --allow-shared includes it)", a);
      continue;
    }
    out.push_back(a);
  }
  if (auto it = (*cfg)->tenants.find(tenant); it != (*cfg)->tenants.end()) {
    out.insert(out.end(), it->second.extra_cidrs.begin(), it->second.extra_cidrs.end());
  }
  return out;
}

StatusOr<Plan> MakePlan(Context& ctx, const SessionsFlags& f, bool kill) {
  Plan plan;
  if (f.max_rounds < 1 || f.max_rounds > 100) {
    return Status::BadInput("--max-rounds " + std::to_string(f.max_rounds) + " is out of range", "pass 1..100");
  }
  if (!f.pace_cluster.empty() || !f.pace_tenant.empty() || f.fleet_sockets > 0) {
    if (f.snapshot_in.empty() || f.pace_cluster.empty() || f.pace_tenant.empty() || f.dry_run) {
      return Status::BadInput("adaptive pacing resets a snapshot, watching the tenant on the target",
                              "pass --snapshot-in FILE --pace-cluster ID --pace-tenant NAME together (no --dry-run)");
    }
  }
  if (!f.snapshot_in.empty()) {
    if (!f.hosts.empty() || !f.netns.empty() || !f.ports.empty() || !f.clients.empty() || !f.conntrack_netns.empty() ||
        !f.states.empty() || !f.snapshot_out.empty()) {
      return Status::BadInput("--snapshot-in takes hosts, ports and sockets from the snapshot file",
                              "drop --host/--netns/--port/--client/--conntrack-netns/--state/--snapshot-out");
    }
    auto snaps = LoadSnapshots(f.snapshot_in);
    if (!snaps.ok()) return snaps.status();
    for (auto& s : *snaps) {
      plan.hosts.push_back({s.host, s.netns, "", s.ports});
      plan.snapshots.push_back(std::move(s));
    }
    if (plan.hosts.empty()) return Status::BadInput("snapshot file '" + f.snapshot_in + "' holds no host");
    return plan;
  }
  auto ports = ParsePorts(f.ports);
  if (!ports.ok()) return ports.status();
  plan.selector.ports = *ports;
  std::vector<std::string> client_texts = f.clients;
  if (!f.tenant.empty()) {
    if (!f.clients.empty()) return Status::BadInput("--tenant and --client exclude each other", "pass one of them");
    auto addrs = TenantClientAddresses(ctx, f.tenant, f.allow_shared);
    if (!addrs.ok()) return addrs.status();
    if (addrs->empty()) {
      return Status::BadInput("tenant '" + f.tenant + "' has no known public client address",
                              "its devices are DERP-only or offline; pass --client CIDR instead");
    }
    client_texts = *addrs;
  }
  auto clients = ParseCidrList(client_texts);
  if (!clients.ok()) return clients.status();
  plan.selector.clients = *clients;
  if (!f.states.empty()) {
    auto st = ParseTcpStates(f.states);
    if (!st.ok()) return st.status();
    plan.selector.states = *st;
  }
  // Listing without --client shows every session on the ports; anything that could lead to a
  // reset (kill, a snapshot) needs the tenant's clients.
  plan.selector.all_clients = plan.selector.clients.empty() && !kill && f.snapshot_out.empty();

  if (!f.hosts.empty()) {
    if (!f.netns.empty() || !f.conntrack_netns.empty()) {
      return Status::BadInput("--host takes the namespace(s) from the config", "drop --netns/--conntrack-netns, or drop --host");
    }
    auto cfg = ctx.config();
    if (!cfg.ok()) return cfg.status();
    for (const auto& name : f.hosts) {
      const SessionHostConfig* found = nullptr;
      std::string known;
      for (const auto& h : (*cfg)->sessions.hosts) {
        if (h.name == name) found = &h;
        known += (known.empty() ? "" : ", ") + h.name;
      }
      if (!found) {
        return Status::BadInput("session host '" + name + "' is not in the config",
                                known.empty() ? "add it under sessions.hosts" : "known hosts: " + known);
      }
      plan.hosts.push_back(SessionHost::FromConfig(*found));
    }
  } else if (!f.netns.empty()) {
    for (const auto& ns : f.netns) plan.hosts.push_back({ns, ns, f.conntrack_netns, {}});
  } else {
    plan.hosts.push_back({"", "", f.conntrack_netns, {}});
  }
  for (const auto& h : plan.hosts) {
    SessionSelector s = plan.selector;
    if (s.ports.empty()) s.ports = h.ports;
    Status st = s.Validate(kill || !f.snapshot_out.empty());
    if (!st.ok()) return st.WithContext(h.name.empty() ? "sessions" : "host " + h.name);
  }
  return plan;
}

// One JSON object for all hosts: totals, every socket (with its host) and a summary per host. The
// sockets array is written by a streaming writer (AppendSocketsJsonArray), not built as a tree: a
// large kill lists 10,000 sockets.
CommandResult Report(const std::vector<TerminationReport>& reports, bool kill, bool json) {
  TerminationReport total;
  nlohmann::json hosts = nlohmann::json::array();
  std::string text;
  for (const auto& r : reports) {
    total.dry_run = total.dry_run || r.dry_run;
    total.rounds = std::max(total.rounds, r.rounds);
    total.nat_flows += r.nat_flows;
    total.dump_ms += r.dump_ms;
    total.destroy_ms += r.destroy_ms;
    total.total_ms += r.total_ms;
    total.selected += r.selected;
    total.reset += r.reset;
    total.gone += r.gone;
    total.failed += r.failed;
    total.remaining += r.remaining;
    hosts.push_back(r.ToJson());
    if (!json) {
      if (reports.size() > 1 || !r.host.empty()) text += "host " + r.host + ":\n";
      r.AppendText(text);
    }
  }
  CommandResult res;
  res.json = total.ToJson();
  res.json.erase("host");
  res.json.erase("netns");
  res.json["hosts"] = std::move(hosts);
  if (json) {
    std::vector<const TerminationReport*> all;
    for (const auto& r : reports) all.push_back(&r);
    std::string sockets;
    AppendSocketsJsonArray(all, sockets);
    res.json_raw.emplace_back("sockets", std::move(sockets));
  }
  res.text = std::move(text);
  if (kill && (total.failed > 0 || total.remaining > 0)) {
    res.status = Status::Failed(std::to_string(total.failed) + " session(s) failed to reset, " +
                                    std::to_string(total.remaining) + " still present after the last round",
                                "see sockets[].error; run the command again to retry");
  }
  return res;
}

CommandResult RunSessions(Context& ctx, const SessionsFlags& f, bool kill) {
  auto plan = MakePlan(ctx, f, kill);
  if (!plan.ok()) return Fail(plan.status());
  const bool destroys = kill && !f.dry_run && f.snapshot_out.empty();
  TerminatorOptions opts;
  opts.max_rounds = f.max_rounds;
  opts.resets_per_second = std::max<int64_t>(0, f.rate);
  std::unique_ptr<TargetBackCounter> back;
  PacedResetOptions paced;
  if (!f.pace_cluster.empty()) {
    // Everything the pacing needs is checked before the first reset: the cluster, its API, the tenant.
    auto cfg = ctx.config();
    if (!cfg.ok()) return Fail(cfg.status());
    const ClusterConfig* target = (*cfg)->FindCluster(f.pace_cluster);
    if (!target) {
      return Fail(Status::BadInput("--pace-cluster " + f.pace_cluster + " is not in the config",
                                   "known clusters: " + (*cfg)->ClusterIds()));
    }
    auto counter = WatchTenantByApi(*target, f.pace_tenant, (*cfg)->timeouts.http_ms);
    if (!counter.ok()) return Fail(counter.status());
    back = std::move(counter).value();
    paced.cap_per_s = f.rate >= 0 ? f.rate : (*cfg)->sessions.reset_rate;
    paced.waves = (*cfg)->sessions.waves;
    paced.max_rounds = f.max_rounds;
    paced.fleet_sockets = f.fleet_sockets;
    paced.progress = LineProgress(ctx);
  }

  auto t0 = std::chrono::steady_clock::now();
  auto ms = [&t0] { return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count(); };
  // Open every host first: a bad namespace, missing privilege or kernel support anywhere stops the
  // command before the first reset.
  std::vector<std::unique_ptr<SessionTable>> tables;
  for (const auto& h : plan->hosts) {
    auto t = SessionTable::Open(h, destroys ? SessionTable::Access::kDestroy : SessionTable::Access::kReadOnly, opts);
    if (!t.ok()) return Fail(t.status());
    tables.push_back(std::move(t).value());
  }
  // Snapshots are checked against their hosts (boot, namespace) before anything is reset too.
  if (!plan->snapshots.empty()) {
    for (size_t i = 0; i < tables.size(); ++i) {
      if (Status st = tables[i]->CheckSnapshot(plan->snapshots[i]); !st.ok()) return Fail(st);
    }
  }

  if (!f.snapshot_out.empty()) {
    std::vector<SessionSnapshot> snaps;
    std::vector<TerminationReport> reports;
    for (auto& t : tables) {
      auto s = t->Snapshot(plan->selector);
      if (!s.ok()) return Fail(s.status());
      TerminationReport r;
      r.host = s->host;
      r.netns = s->netns;
      for (const auto& sock : s->sockets) r.sockets.push_back({sock, SessionOutcome::kListed, 0});
      r.rounds = 1;
      r.Recount();
      reports.push_back(std::move(r));
      snaps.push_back(std::move(s).value());
    }
    if (Status st = SaveSnapshots(f.snapshot_out, snaps); !st.ok()) return Fail(st);
    CommandResult res = Report(reports, false, ctx.json());
    res.json["snapshot"] = f.snapshot_out;
    res.text += "snapshot written to " + f.snapshot_out + "\n";
    return res;
  }

  spdlog::debug("sessions: {} host(s) opened and checked in {:.1f} ms", tables.size(), ms());
  if (back) {
    tables.clear();  // each wave opens its hosts itself
    auto r = RunPacedReset(plan->hosts, plan->snapshots, back.get(), paced);
    if (!r.ok()) return Fail(r.status());
    for (const auto& rep : r->reports) {
      spdlog::info("sessions: host '{}': {} selected, {} reset, {} gone, {} failed", rep.host, rep.selected, rep.reset,
                   rep.gone, rep.failed);
    }
    CommandResult res = Report(r->reports, true, ctx.json());
    res.json["pacing"] = r->pacing;
    return res;
  }
  // Every host at once (OnEachHost): hosts are independent.
  auto results = OnEachHost<StatusOr<TerminationReport>>(tables.size(), [&](size_t i) -> StatusOr<TerminationReport> {
    if (!plan->snapshots.empty()) return tables[i]->KillSnapshot(plan->snapshots[i], !destroys);
    if (kill) return tables[i]->Kill(plan->selector, !destroys);
    return tables[i]->List(plan->selector);
  });
  std::vector<TerminationReport> reports;
  for (size_t i = 0; i < results.size(); ++i) {
    auto& r = results[i];
    if (!r.ok()) {
      // The other hosts' outcomes are in the log; the command reports the failure.
      return Fail(r.status().WithContext(plan->hosts[i].name.empty() ? "sessions" : "host " + plan->hosts[i].name));
    }
    if (kill) {
      spdlog::info("sessions: host '{}': {} selected, {} reset, {} gone, {} failed{} ({:.1f} ms)", r->host, r->selected,
                   r->reset, r->gone, r->failed, destroys ? "" : " (dry run)", r->total_ms);
    }
    reports.push_back(std::move(r).value());
  }
  spdlog::debug("sessions: done at {:.1f} ms", ms());
  CommandResult res = Report(reports, kill, ctx.json());
  spdlog::debug("sessions: report built at {:.1f} ms", ms());
  return res;
}

const CommandRegistrar kSessions([](CLI::App& app, const auto& bind) {
  auto* sessions = app.add_subcommand("sessions", "list, snapshot or reset a tenant's TCP sessions on the proxy");
  sessions->require_subcommand(1);

  static SessionsFlags list_storage, kill_storage;  // CLI11 binds to storage that outlives parsing
  SessionsFlags* list_flags = &list_storage;
  auto* list = sessions->add_subcommand("list", "list the sessions a selection matches (read-only)");
  AddSelectionFlags(list, list_flags);
  bind(list, [list_flags](Context& ctx) { return RunSessions(ctx, *list_flags, false); });

  SessionsFlags* kill_flags = &kill_storage;
  auto* kill = sessions->add_subcommand("kill", "reset the selected sessions (sock_diag SOCK_DESTROY)");
  AddSelectionFlags(kill, kill_flags);
  kill->add_option("--snapshot-in", kill_flags->snapshot_in,
                   "reset only the sessions of this snapshot that still exist (same socket cookie)");
  kill->add_flag("--dry-run", kill_flags->dry_run, "list what would be reset; reset nothing");
  kill->add_option("--max-rounds", kill_flags->max_rounds, "dump-and-destroy rounds (default 3)");
  kill->add_option("--rate", kill_flags->rate,
                   "reset at most N sessions per second per host, in waves every 10 ms (default 0: all at once; "
                   "with --pace-cluster the cap, default sessions.reset_rate)")
      ->check(CLI::Range(int64_t{0}, int64_t{10000000}));
  kill->add_option("--pace-cluster", kill_flags->pace_cluster,
                   "with --snapshot-in: reset in waves that follow what this (target) cluster absorbs, watching "
                   "--pace-tenant's devices come back there (adaptive pacing)");
  kill->add_option("--pace-tenant", kill_flags->pace_tenant, "with --pace-cluster: the tenant being moved");
  kill->add_option("--fleet-sockets", kill_flags->fleet_sockets,
                   "with --pace-cluster: the tenant's snapshotted sockets on every proxy host together; this host "
                   "resets its proportional share of each fleet-wide wave (default: this host's alone)")
      ->check(CLI::Range(int64_t{1}, int64_t{100000000}));
  bind(kill, [kill_flags](Context& ctx) { return RunSessions(ctx, *kill_flags, true); });
});

}  // namespace
}  // namespace headshift::cli
