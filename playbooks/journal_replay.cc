#include "playbooks/journal_replay.h"

#include "playbooks/journal_details.h"

namespace headshift {

using json = nlohmann::json;

Status LoadRunFromJournal(const std::string& id, MigrationRun& run) {
  auto rec = run.env.mover->journal().Get(id);
  if (!rec.ok()) return rec.status();
  run.rec = *rec;
  FillReportFromJournal(run);
  // The tags the tenant owned when this migration planned it: its tagged devices stay part of it for
  // every later step (TenantNodes, sessions, reconnection), whatever the policy says now.
  json policy = StepDetails(run.rec, "preflight").value("policy", json::object());
  if (policy.contains("owned_tags") && policy["owned_tags"].is_array() && !policy["owned_tags"].empty()) {
    migrate::TagOwnership owned;
    owned.Add(run.rec.tenant, policy["owned_tags"].get<std::vector<std::string>>());
    run.env.mover->SetTagOwnership(owned);
  }
  return Status::Ok();
}

void FillReportFromJournal(MigrationRun& run) {
  const auto& rec = run.rec;
  MigrationReport& rep = run.rep;
  rep.id = rec.id;
  rep.tenant = rec.tenant;
  rep.from = rec.from;
  rep.to = rec.to;
  rep.layout = DbLayoutName(run.env.config.database.layout);
  rep.state = rec.state;
  run.ref = {rec.id, rec.tenant, rec.from, rec.to};
  if (const auto* last = rec.LastStep()) rep.step = last->step;
  for (const auto& s : rec.steps) {
    if (s.details.contains("ms")) rep.timings_ms[s.step] = s.details["ms"].get<double>();
  }
  json copy = StepDetails(rec, "copy");
  if (copy.contains("tables")) {
    for (const auto& t : copy["tables"]) rep.rows[t.value("table", "")] = t.value("rows", 0);
  }
  json pre = StepDetails(rec, "preflight");
  rep.route_before = pre.value("route_before", "");
  if (pre.contains("online_before")) rep.online_before = static_cast<int64_t>(pre["online_before"].size());
  json snap = StepDetails(rec, "snapshot_sessions");
  rep.sessions_selected = snap.value("selected", 0);
  if (snap.contains("client_addresses")) rep.client_addresses = snap["client_addresses"].get<std::vector<std::string>>();
  if (snap.contains("shared")) {
    for (auto it = snap["shared"].begin(); it != snap["shared"].end(); ++it) {
      rep.shared_addresses[it.key()] = it.value().get<std::vector<std::string>>();
    }
  }
  json reset = StepDetails(rec, "reset_sessions");
  rep.sessions_reset = reset.value("reset", 0);
  rep.sessions_gone = reset.value("gone", 0);
  rep.sessions_failed = reset.value("failed", 0);
  rep.sessions_collateral = reset.value("collateral", 0);
  if (reset.contains("pacing")) rep.pacing = reset["pacing"];
  json ready = StepDetails(rec, "target_ready");
  if (ready.contains("target_restart")) {
    rep.target_restart = TargetRestartReport::FromJson(ready["target_restart"]);
    rep.reloaded_target = rep.target_restart->reloaded;
  }
  json pol = StepDetails(rec, "policy");
  if (pol.contains("policy")) rep.policy = pol["policy"];
  else if (pre.contains("policy")) rep.policy = pre["policy"];
  json tn = StepDetails(rec, "tailnet");
  if (!tn.empty()) rep.tailnet = tn;
  json done = StepDetails(rec, "complete");
  if (done.contains("ghosts")) rep.ghosts = done["ghosts"];
  json rc = StepDetails(rec, "reconnected");
  rep.reconnected = rc.value("reconnected", 0);
  rep.reauth = rc.value("reauth", 0);
  if (rc.contains("stragglers")) rep.stragglers = rc["stragglers"].get<std::vector<std::string>>();
  if (rc.contains("spared")) rep.spared = rc["spared"].get<std::vector<std::string>>();
  if (StepStarted(rec, "switch_route")) rep.route_after = rec.to;
  rep.external_steps.clear();
  for (const auto& s : rec.steps) {
    if (s.details.value("external", false)) rep.external_steps.push_back(s.step);
  }
  if (rep.client_addresses.empty() && rec.details.contains("client_addresses")) {
    rep.client_addresses = rec.details["client_addresses"].get<std::vector<std::string>>();
  }
  if (rec.state == "paused") {
    rep.paused_after = rec.details.value("paused_after", "");
    rep.next_step = rec.details.value("next_step", "");
  }
}

}  // namespace headshift
