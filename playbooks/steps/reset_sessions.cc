// reset_sessions: only the snapshot's sockets that still exist are destroyed (SOCK_DESTROY by
// cookie), on every session host at once, paced as sessions.pacing / --pacing say (playbooks/paced_reset.h:
// adaptive waves that follow what the target absorbs, capped by --reset-rate; fixed; 0 = unpaced).
// Journals reset, gone, failed, collateral (resets of shared addresses), the per-host counts and
// `pacing` (mode, signal, cap, devices, absorb rate, waves). The last cut step.
// Undo (after switch_route's, so clients return through the restored route): the tenant's client
// sessions reset again — unless the cut was a fleet's (its proxy hosts undo it).
#include <algorithm>
#include <memory>
#include <set>

#include "dataplane/cidr.h"
#include "playbooks/paced_reset.h"
#include "playbooks/client_selection.h"
#include "playbooks/journal_details.h"
#include "playbooks/migration_run.h"
#include "playbooks/steps/steps.h"

namespace headshift::steps {

namespace {

using json = nlohmann::json;

// What the pacing needs from the target: its view of the tenant's devices (TargetBackCounter). On
// failure the reset falls back to fixed pacing (the reason is reported), it never stops the cut.
std::unique_ptr<TargetBackCounter> WatchTarget(MigrationRun& run, std::string* why) {
  const ClusterConfig* target = run.env.config.FindCluster(run.ref.to);
  auto key = run.env.api_keys.Get(run.ref.to);
  auto nodes = run.env.mover->TenantNodes(run.ref.tenant, run.ref.to);
  if (!target || !key.ok() || !nodes.ok()) {
    *why = "the tenant's nodes on cluster " + run.ref.to + " could not be read: " +
           (!key.ok() ? key.status().ToString() : nodes.ok() ? std::string("unknown cluster") : nodes.status().ToString());
    return nullptr;
  }
  std::set<std::string> ids;
  for (const auto& n : *nodes) {
    if (!n.deleted) ids.insert(std::to_string(n.id));
  }
  auto counter = std::make_unique<TargetBackCounter>(*target, *key, run.env.config.timeouts.http_ms);
  if (Status st = counter->Start(std::move(ids), run.ref.tenant); !st.ok()) {
    *why = "cluster " + run.ref.to + "'s view of its devices could not be read: " + st.ToString();
    return nullptr;
  }
  return counter;
}

StatusOr<json> Run(MigrationRun& run) {
  json snaps = StepDetails(run.rec, "snapshot_sessions")["snapshots"];
  std::set<std::string> shared;
  for (const auto& [a, t] : run.rep.shared_addresses) shared.insert(a);
  json per_host = json::object();
  TerminationReport total;
  json pacing;
  if (snaps.is_array()) {
    auto hosts = run.env.Hosts();
    std::vector<SessionHost> work_hosts;
    std::vector<SessionSnapshot> work;
    for (const auto& sj : snaps) {
      auto snap = SessionSnapshot::FromJson(sj);
      if (!snap.ok()) return snap.status();
      auto host = std::find_if(hosts.begin(), hosts.end(), [&](const SessionHost& h) { return h.name == snap->host; });
      if (host == hosts.end()) return Status::Failed("snapshot names unknown session host " + snap->host);
      work_hosts.push_back(*host);
      work.push_back(std::move(snap).value());
    }
    const SessionsConfig& sc = run.env.config.sessions;
    PacedResetOptions o;
    o.cap_per_s = run.opts.reset_rate >= 0 ? run.opts.reset_rate : sc.reset_rate;
    o.pacing = sc.pacing;
    if (!run.opts.pacing.empty()) {
      auto p = ParseResetPacing(run.opts.pacing);
      if (!p.ok()) return p.status();
      o.pacing = *p;
    }
    o.waves = sc.waves;
    o.progress = run.opts.detail;
    std::unique_ptr<TargetBackCounter> back;
    if (o.pacing == ResetPacing::kAdaptive && o.cap_per_s > 0) back = WatchTarget(run, &o.fallback);
    auto paced = RunPacedReset(work_hosts, work, back.get(), o);
    if (!paced.ok()) return paced.status();
    pacing = paced->pacing;
    if (pacing["fallback"].is_string()) {
      run.rep.warnings.push_back("session reset paced " + pacing.value("mode", std::string()) + ": " +
                                 pacing["fallback"].get<std::string>());
    }
    for (size_t i = 0; i < work_hosts.size(); ++i) {
      const TerminationReport& rep = paced->reports[i];
      for (const auto& rec : rep.sockets) {
        if (rec.outcome == SessionOutcome::kReset && shared.count(rec.socket.Remote().addr.Unmapped().ToString())) {
          ++run.rep.sessions_collateral;
        }
      }
      per_host[work_hosts[i].name] = {{"selected", rep.selected}, {"reset", rep.reset}, {"gone", rep.gone},
                                      {"failed", rep.failed}};
      total.Merge(rep);
    }
  }
  run.rep.sessions_by_host = per_host;
  run.rep.pacing = pacing;
  run.rep.sessions_reset = static_cast<int64_t>(total.reset);
  run.rep.sessions_gone = static_cast<int64_t>(total.gone);
  run.rep.sessions_failed = static_cast<int64_t>(total.failed);
  if (total.failed > 0) {
    run.rep.warnings.push_back(std::to_string(total.failed) + " session(s) could not be reset; those clients move "
                               "at their next reconnect");
  }
  return json{{"reset", total.reset}, {"gone", total.gone}, {"failed", total.failed},
              {"collateral", run.rep.sessions_collateral}, {"hosts", per_host}, {"pacing", pacing}};
}

// Clients reconnected through the new route: reset them again so they return.
Status Undo(MigrationRun& run, json& details) {
  if (!run.env.route || StepExternal(run.rec, "switch_route")) return Status::Ok();
  bool split = run.env.config.database.layout == DbLayout::kSplit;
  auto sel = SelectClients(*run.env.mover, run.env.config, run.ref.tenant, split ? run.ref.to : run.ref.from,
                           run.opts.allow_shared);
  if (!sel.ok()) return sel.status();
  if (sel->selected.empty()) return Status::Ok();
  auto cidrs = ParseCidrList(sel->selected);
  if (!cidrs.ok()) return cidrs.status();
  int64_t reset = 0;
  for (const auto& h : run.env.Hosts()) {
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
}

}  // namespace

MigrationStep ResetSessions() {
  return MigrationStep{
      .name = "reset_sessions",
      .cut = true,
      .run = Run,
      .undo = Undo,
      .undo_after = "switch_route",
  };
}

}  // namespace headshift::steps
