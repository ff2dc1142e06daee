// snapshot_sessions: the tenant's client addresses (playbooks/client_selection.h; shared ones
// spared unless --allow-shared) and the matching sockets on every session host, recorded with their
// cookies. Journals snapshots, client_addresses, shared, selected, allow_shared (reset_sessions
// and reconnected read them). A cut step. Nothing to undo (it only reads).
#include "dataplane/cidr.h"
#include "dataplane/host_fanout.h"
#include "playbooks/client_selection.h"
#include "playbooks/migration_run.h"
#include "playbooks/steps/steps.h"

namespace headshift::steps {

namespace {

using json = nlohmann::json;

StatusOr<json> Run(MigrationRun& run) {
  auto sel = SelectClients(*run.env.mover, run.env.config, run.ref.tenant, run.ref.to, run.opts.allow_shared);
  if (!sel.ok()) return sel.status();
  run.rep.client_addresses = sel->selected;
  run.rep.shared_addresses = sel->shared;
  run.rep.shared_reset = run.opts.allow_shared && !sel->shared.empty();
  json snaps = json::array();
  int64_t total = 0;
  if (sel->selected.empty()) {
    run.rep.warnings.push_back("no public client address known for " + run.ref.tenant +
                               " (DERP-only devices or none online): no session to reset; devices move at "
                               "their next reconnect");
  } else {
    auto cidrs = ParseCidrList(sel->selected);
    if (!cidrs.ok()) return cidrs.status();
    auto hosts = run.env.Hosts();
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
              {"selected", total}, {"allow_shared", run.opts.allow_shared}};
}

}  // namespace

MigrationStep SnapshotSessions() {
  return MigrationStep{
      .name = "snapshot_sessions",
      .cut = true,
      .run = Run,
  };
}

}  // namespace headshift::steps
