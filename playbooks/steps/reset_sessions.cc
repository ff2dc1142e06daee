// reset_sessions: only the snapshot's sockets that still exist are destroyed (SOCK_DESTROY by
// cookie), on every session host at once, paced at --reset-rate per host. Journals reset, gone,
// failed, collateral (resets of shared addresses) and the per-host counts. The last cut step.
// Undo (after switch_route's, so clients return through the restored route): the tenant's client
// sessions reset again — unless the cut was a fleet's (its proxy hosts undo it).
#include <algorithm>
#include <set>

#include "dataplane/cidr.h"
#include "dataplane/host_fanout.h"
#include "playbooks/client_selection.h"
#include "playbooks/journal_details.h"
#include "playbooks/migration_run.h"
#include "playbooks/steps/steps.h"

namespace headshift::steps {

namespace {

using json = nlohmann::json;

StatusOr<json> Run(MigrationRun& run) {
  json snaps = StepDetails(run.rec, "snapshot_sessions")["snapshots"];
  std::set<std::string> shared;
  for (const auto& [a, t] : run.rep.shared_addresses) shared.insert(a);
  json per_host = json::object();
  TerminationReport total;
  if (snaps.is_array()) {
    auto hosts = run.env.Hosts();
    std::vector<std::pair<SessionHost, SessionSnapshot>> work;
    for (const auto& sj : snaps) {
      auto snap = SessionSnapshot::FromJson(sj);
      if (!snap.ok()) return snap.status();
      auto host = std::find_if(hosts.begin(), hosts.end(), [&](const SessionHost& h) { return h.name == snap->host; });
      if (host == hosts.end()) return Status::Failed("snapshot names unknown session host " + snap->host);
      work.emplace_back(*host, std::move(snap).value());
    }
    TerminatorOptions pacing;
    pacing.resets_per_second = run.opts.reset_rate >= 0 ? run.opts.reset_rate : run.env.config.sessions.reset_rate;
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
