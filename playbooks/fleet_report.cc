#include "playbooks/fleet_report.h"

#include <sstream>

namespace headshift {

using json = nlohmann::json;

namespace {

json MoveJson(const PlannedMove& m) {
  return {{"tenant", m.tenant}, {"from", m.from}, {"to", m.to}, {"devices", m.devices}};
}

}  // namespace

json FleetReport::ToJson() const {
  json plan_j = json::array(), done = json::array(), fail = json::array(), pend = json::array();
  for (const auto& m : plan) plan_j.push_back(MoveJson(m));
  for (const auto& r : completed) done.push_back(r.ToJson());
  for (const auto& [m, e] : failed) {
    json j = MoveJson(m);
    j["error"] = e;
    fail.push_back(j);
  }
  for (const auto& m : pending) pend.push_back(MoveJson(m));
  json pause = json::array();
  for (const auto& [m, id] : paused) {
    json j = MoveJson(m);
    j["id"] = id;
    j["resume"] = "headshift resume " + id;
    pause.push_back(j);
  }
  json out{{"operation", operation}, {"plan", plan_j},   {"completed", done},
           {"failed", fail},         {"pending", pend},  {"paused", pause},
           {"skipped", skipped},     {"ok", ok()},       {"target_restarts", json(target_restarts)},
           {"target_restart_detail", target_restart_detail}};
  for (auto it = extra.begin(); it != extra.end(); ++it) out[it.key()] = it.value();
  return out;
}

std::string FleetReport::ToText() const {
  std::ostringstream o;
  o << operation << ": " << plan.size() << " move(s) planned\n";
  for (const auto& m : plan) o << "  " << m.tenant << ": " << m.from << " -> " << m.to << " (" << m.devices << " devices)\n";
  if (extra.contains("before")) o << "  devices per cluster before: " << extra["before"].dump() << "\n";
  if (extra.contains("after")) o << "  devices per cluster after:  " << extra["after"].dump() << "\n";
  for (const auto& s : skipped) o << "  skipped " << s << "\n";
  for (const auto& r : completed) {
    o << "  done    " << r.tenant << " " << r.from << " -> " << r.to << " (" << r.id << ", reset "
      << r.sessions_reset << ", reconnected " << r.reconnected << "/" << r.online_before << ")\n";
  }
  for (const auto& [m, e] : failed) o << "  FAILED  " << m.tenant << ": " << e << "\n";
  for (const auto& m : pending) o << "  pending " << m.tenant << " " << m.from << " -> " << m.to << "\n";
  for (const auto& [m, id] : paused) {
    o << "  paused  " << m.tenant << " " << m.from << " -> " << m.to << " at policy (" << id
      << "): continue with `headshift resume " << id << "` or re-run the same command\n";
  }
  for (const auto& [cluster, n] : target_restarts) {
    const json& d = target_restart_detail.contains(cluster) ? target_restart_detail[cluster] : json();
    if (d.is_object() && d.contains("message")) {
      o << "  " << d["message"].get<std::string>() << "\n";
    } else {
      o << "  cluster " << cluster << ": " << n << " restart(s)\n";
    }
    if (d.is_object() && d.contains("reports")) {
      for (const auto& r : d["reports"]) o << "    " << r.value("reason", "") << ": " << r.value("message", "") << "\n";
    }
  }
  return o.str();
}

json PlaybookRunReport::ToJson() const {
  return {{"run_id", run_id}, {"playbook", playbook}, {"state", state}, {"next_step", next_step}, {"steps", steps}};
}

std::string PlaybookRunReport::ToText() const {
  std::ostringstream o;
  o << "playbook " << playbook << " run " << run_id << ": " << state << "\n";
  for (const auto& s : steps) {
    o << "  [" << s.value("index", 0) << "] " << s.value("step", "") << ": " << s.value("state", "") << "\n";
  }
  return o.str();
}

}  // namespace headshift
