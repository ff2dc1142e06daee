// `headshift sessions list|kill`: list, snapshot or reset a tenant's TCP sessions on the proxy's
// session hosts (dataplane/sessions.h). Everything is validated — values, namespaces, privilege,
// kernel support, snapshot file — before the first socket is reset.
#include <memory>
#include <string>
#include <vector>

#include <spdlog/spdlog.h>

#include "cli/command.h"
#include "dataplane/sessions.h"

namespace headshift::cli {
namespace {

struct SessionsFlags {
  std::vector<std::string> hosts, netns, ports, clients, states;
  std::string conntrack_netns, snapshot_in, snapshot_out;
  bool dry_run = false;
  int max_rounds = 3;
};

void AddSelectionFlags(CLI::App* sub, SessionsFlags* f) {
  sub->add_option("--host", f->hosts, "session host(s) from the config (sessions.hosts[].name)")->delimiter(',');
  sub->add_option("--netns", f->netns, "network namespace(s): a name under /run/netns or a path like /proc/PID/ns/net "
                                       "(default: headshift's own)");
  sub->add_option("--port", f->ports, "the proxy's listen port(s), e.g. 443 or 80,443");
  sub->add_option("--client", f->clients, "tenant client address or CIDR (IPv4/IPv6), repeatable");
  sub->add_option("--conntrack-netns", f->conntrack_netns,
                  "namespace doing source NAT in front of the proxy: resolve clients through its conntrack table");
  sub->add_option("--state", f->states, "TCP states (default: live connections; never listen)");
  sub->add_option("--snapshot-out", f->snapshot_out, "record the selected sessions (tuple, cookie, time) to FILE; "
                                                     "nothing is reset");
}

struct Plan {
  std::vector<SessionHost> hosts;
  SessionSelector selector;                 // ports may be empty (then each host's ports)
  std::vector<SessionSnapshot> snapshots;   // --snapshot-in: one per host, same order
};

StatusOr<Plan> MakePlan(Context& ctx, const SessionsFlags& f, bool kill) {
  Plan plan;
  if (f.max_rounds < 1 || f.max_rounds > 100) {
    return Status::BadInput("--max-rounds " + std::to_string(f.max_rounds) + " is out of range", "pass 1..100");
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
  auto clients = ParseCidrList(f.clients);
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

nlohmann::json HostSummary(const TerminationReport& r) {
  nlohmann::json j = r.ToJson();
  j.erase("sockets");
  return j;
}

CommandResult Report(const std::vector<TerminationReport>& reports, bool kill) {
  TerminationReport total;
  nlohmann::json hosts = nlohmann::json::array();
  nlohmann::json sockets = nlohmann::json::array();
  std::string text;
  for (const auto& r : reports) {
    total.Merge(r);
    hosts.push_back(HostSummary(r));
    nlohmann::json j = r.ToJson();
    for (auto& s : j["sockets"]) {
      s["host"] = r.host;
      sockets.push_back(std::move(s));
    }
    if (reports.size() > 1 || !r.host.empty()) text += "host " + r.host + ":\n";
    text += r.ToText();
  }
  CommandResult res;
  res.json = total.ToJson();
  res.json.erase("host");
  res.json.erase("netns");
  res.json["sockets"] = std::move(sockets);
  res.json["hosts"] = std::move(hosts);
  res.text = text;
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
    CommandResult res = Report(reports, false);
    res.json["snapshot"] = f.snapshot_out;
    res.text += "snapshot written to " + f.snapshot_out + "\n";
    return res;
  }

  std::vector<TerminationReport> reports;
  for (size_t i = 0; i < tables.size(); ++i) {
    StatusOr<TerminationReport> r = Status::Failed("unreachable");
    if (!plan->snapshots.empty()) {
      r = tables[i]->KillSnapshot(plan->snapshots[i], !destroys);
    } else if (kill) {
      r = tables[i]->Kill(plan->selector, !destroys);
    } else {
      r = tables[i]->List(plan->selector);
    }
    if (!r.ok()) {
      // Hosts already done keep their outcome in the log; the command reports the failure.
      return Fail(r.status().WithContext(plan->hosts[i].name.empty() ? "sessions" : "host " + plan->hosts[i].name));
    }
    if (kill) {
      spdlog::info("sessions: host '{}': {} selected, {} reset, {} gone, {} failed{} ({:.1f} ms)", r->host, r->selected,
                   r->reset, r->gone, r->failed, destroys ? "" : " (dry run)", r->total_ms);
    }
    reports.push_back(std::move(r).value());
  }
  return Report(reports, kill);
}

const CommandRegistrar kSessions([](CLI::App& app, const auto& bind) {
  auto* sessions = app.add_subcommand("sessions", "list, snapshot or reset a tenant's TCP sessions on the proxy");
  sessions->require_subcommand(1);

  auto* list_flags = new SessionsFlags();
  auto* list = sessions->add_subcommand("list", "list the sessions a selection matches (read-only)");
  AddSelectionFlags(list, list_flags);
  bind(list, [list_flags](Context& ctx) { return RunSessions(ctx, *list_flags, false); });

  auto* kill_flags = new SessionsFlags();
  auto* kill = sessions->add_subcommand("kill", "reset the selected sessions (sock_diag SOCK_DESTROY)");
  AddSelectionFlags(kill, kill_flags);
  kill->add_option("--snapshot-in", kill_flags->snapshot_in,
                   "reset only the sessions of this snapshot that still exist (same socket cookie)");
  kill->add_flag("--dry-run", kill_flags->dry_run, "list what would be reset; reset nothing");
  kill->add_option("--max-rounds", kill_flags->max_rounds, "dump-and-destroy rounds (default 3)");
  bind(kill, [kill_flags](Context& ctx) { return RunSessions(ctx, *kill_flags, true); });
});

}  // namespace
}  // namespace headshift::cli
