// reconnected: the target's API shows online every device that was online before the cut (the
// preflight's online_before), polled until timeouts.reconnect_ms; devices whose every public
// address was spared are not expected yet. Journals online_before, reconnected, spared,
// stragglers, reauth. After the cut: a failure stops for the operator.
#include <algorithm>
#include <set>
#include <thread>

#include "migrate/tenant_facts.h"
#include "playbooks/journal_details.h"
#include "playbooks/migration_run.h"
#include "playbooks/steps/steps.h"
#include "playbooks/target_restart.h"
#include "playbooks/tenant_control_nodes.h"

namespace headshift::steps {

namespace {

using json = nlohmann::json;

StatusOr<json> Run(MigrationRun& run) {
  MigrationReport& rep = run.rep;
  json before = StepDetails(run.rec, "preflight")["online_before"];
  std::set<std::string> want;
  if (before.is_array()) {
    for (const auto& n : before) want.insert(n.get<std::string>());
  }
  rep.online_before = static_cast<int64_t>(want.size());
  auto api = run.env.Control(run.ref.to);
  if (!api.ok()) return api.status();
  auto nodes = run.env.mover->TenantNodes(run.ref.tenant, run.ref.to);
  if (!nodes.ok()) return nodes.status();
  // Devices whose every public address was spared (shared with another tenant) keep their
  // session to the source until they reconnect on their own: not expected back yet.
  json snap = StepDetails(run.rec, "snapshot_sessions");
  std::set<std::string> spared_addrs;
  if (!snap.value("allow_shared", false) && snap.contains("shared")) {
    for (auto it = snap["shared"].begin(); it != snap["shared"].end(); ++it) spared_addrs.insert(it.key());
  }
  rep.spared.clear();
  for (const auto& n : *nodes) {
    bool any_public = false, all_spared = true;
    for (const auto& e : n.endpoints) {
      if (!migrate::IsPublicClientAddress(e.ip)) continue;
      any_public = true;
      if (!spared_addrs.count(e.ip)) all_spared = false;
    }
    if (any_public && all_spared && want.erase(n.given_name)) rep.spared.push_back(n.given_name);
  }
  auto deadline = MigrationClock::now() + ReconnectWait(run.env.config.timeouts.reconnect_ms, want.size());
  std::set<std::string> online, served_keys;
  for (;;) {
    auto served = TenantControlNodes(**api, run.ref.tenant, *nodes);
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
    if (MigrationClock::now() > deadline) break;
    // Each poll lists every node of the tenant; polling harder steals CPU from the reconnecting
    // clients when they share the host's CPUs (as in the sandbox).
    std::this_thread::sleep_for(ListPollInterval(want.size(), std::chrono::milliseconds(100)));
  }
  rep.reconnected = 0;
  rep.stragglers.clear();
  for (const auto& n : want) {
    if (online.count(n)) ++rep.reconnected;
    else rep.stragglers.push_back(n);
  }
  rep.reauth = 0;
  for (const auto& n : *nodes) {
    if (!n.deleted && !n.expired && !served_keys.count(n.node_key)) ++rep.reauth;
  }
  if (!rep.stragglers.empty()) {
    rep.warnings.push_back(std::to_string(rep.stragglers.size()) + " device(s) online before the cut are "
                           "not back on cluster " + run.ref.to + " yet (see stragglers)");
  }
  return json{{"online_before", rep.online_before}, {"reconnected", rep.reconnected}, {"spared", rep.spared},
              {"stragglers", rep.stragglers}, {"reauth", rep.reauth}};
}

}  // namespace

MigrationStep Reconnected() {
  return MigrationStep{
      .name = "reconnected",
      .after_cut = true,
      .run = Run,
  };
}

}  // namespace headshift::steps
