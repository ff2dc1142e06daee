#include "playbooks/migration_report.h"

#include <cstdio>
#include <sstream>

namespace headshift {
namespace {

std::string Plural(int64_t n, const char* one, const char* many) {
  return std::to_string(n) + " " + (n == 1 ? one : many);
}

// "a, b, c" (at most 10 names, then "…").
std::string TenantList(const std::map<std::string, int64_t>& tenants) {
  std::string out;
  size_t i = 0;
  for (const auto& [t, n] : tenants) {
    if (i++ == 10) return out + ", …";
    out += (out.empty() ? "" : ", ") + t;
  }
  return out;
}

}  // namespace

nlohmann::json Risk::ToJson() const {
  nlohmann::json j = details.is_object() ? details : nlohmann::json::object();
  j["kind"] = kind;
  j["message"] = message;
  return j;
}

Risk Risk::FromJson(const nlohmann::json& j) {
  Risk r;
  if (j.is_string()) {
    r.kind = "other";
    r.message = j.get<std::string>();
    return r;
  }
  if (!j.is_object()) return r;
  r.kind = j.value("kind", "other");
  r.message = j.value("message", "");
  r.details = j;
  r.details.erase("kind");
  r.details.erase("message");
  return r;
}

std::optional<int64_t> TargetRestartReport::Collateral() const {
  if (!restarted) return 0;
  return devices;
}

std::string TargetRestartReport::Describe() const {
  std::string who;
  if (!devices) {
    who = "an unknown number of online devices of other tenants" +
          (unknown_reason.empty() ? std::string() : " (" + unknown_reason + ")");
  } else if (*devices == 0) {
    who = "no device of another tenant is online there";
  } else {
    who = Plural(*devices, "online device", "online devices") + " of " +
          Plural(static_cast<int64_t>(tenants.size()), "other tenant", "other tenants") + " (" + TenantList(tenants) +
          ")";
  }
  bool someone = !devices || *devices > 0;
  if (planned) {
    if (!drops_sessions) return "reloading cluster " + cluster + " keeps its connections (reload_drops_sessions: false)";
    if (!reload_needed) {
      return "cluster " + cluster + " reads nodes per request: its reload_command restarts it, and runs only if it "
             "does not serve the copied node keys; then " + who + (someone ? " would reconnect" : "");
    }
    return "reloading cluster " + cluster + " restarts it: " + who + (someone ? " will reconnect" : "");
  }
  if (!reload_needed) return "cluster " + cluster + " already served the tenant's node keys: not reloaded, nothing restarted";
  if (!restarted) return "cluster " + cluster + " was reloaded; its reload keeps connections (reload_drops_sessions: false)";
  std::string out = "cluster " + cluster + " was restarted by its reload: " + who;
  if (!devices || *devices == 0) return out;
  out += " were disconnected; " + std::to_string(reconnected) + " back";
  if (!stragglers.empty()) out += ", " + std::to_string(stragglers.size()) + " not back (see target_restart.stragglers)";
  return out;
}

nlohmann::json TargetRestartReport::ToJson() const {
  nlohmann::json j = {{"cluster", cluster},
                      {"planned", planned},
                      {"reload_needed", reload_needed},
                      {"drops_sessions", drops_sessions},
                      {"devices_reconnecting", devices ? nlohmann::json(*devices) : nlohmann::json()},
                      {"tenants", devices ? nlohmann::json(tenants) : nlohmann::json()},
                      {"message", Describe()}};
  if (!devices && !unknown_reason.empty()) j["unknown_reason"] = unknown_reason;
  if (planned) {
    j["would_restart"] = restarted;
  } else {
    j["reloaded"] = reloaded;
    j["restarted"] = restarted;
    j["reconnected"] = reconnected;
    j["stragglers"] = stragglers;
    j["reconnect_ms"] = static_cast<int64_t>(reconnect_ms + 0.5);
  }
  return j;
}

TargetRestartReport TargetRestartReport::FromJson(const nlohmann::json& j) {
  TargetRestartReport r;
  if (!j.is_object()) return r;
  r.cluster = j.value("cluster", "");
  r.planned = j.value("planned", false);
  r.reload_needed = j.value("reload_needed", false);
  r.drops_sessions = j.value("drops_sessions", false);
  r.reloaded = j.value("reloaded", false);
  r.restarted = j.value(r.planned ? "would_restart" : "restarted", false);
  if (j.contains("devices_reconnecting") && j["devices_reconnecting"].is_number_integer()) {
    r.devices = j["devices_reconnecting"].get<int64_t>();
    if (j.contains("tenants") && j["tenants"].is_object()) r.tenants = j["tenants"].get<std::map<std::string, int64_t>>();
  }
  r.unknown_reason = j.value("unknown_reason", "");
  r.reconnected = j.value("reconnected", int64_t{0});
  if (j.contains("stragglers") && j["stragglers"].is_array()) r.stragglers = j["stragglers"].get<std::vector<std::string>>();
  r.reconnect_ms = j.value("reconnect_ms", 0.0);
  return r;
}

std::optional<int64_t> MigrationReport::Collateral() const {
  std::optional<int64_t> restart = RestartCollateral();
  if (!restart) return std::nullopt;
  return sessions_collateral + *restart;
}

std::optional<int64_t> MigrationReport::RestartCollateral() const {
  if (!target_restart) return 0;
  // A planned restart costs something only in a plan; a refused migration restarted nothing.
  if (target_restart->planned && state != "planned" && state != "would_refuse") return 0;
  return target_restart->Collateral();
}

nlohmann::json MigrationReport::ToJson() const {
  nlohmann::json shared = nlohmann::json::object();
  for (const auto& [addr, tenants] : shared_addresses) shared[addr] = tenants;
  nlohmann::json timings = nlohmann::json::object();
  for (const auto& [k, v] : timings_ms) timings[k] = static_cast<int64_t>(v + 0.5);
  nlohmann::json risk_list = nlohmann::json::array();
  for (const auto& r : risks) risk_list.push_back(r.ToJson());
  std::optional<int64_t> total = Collateral();
  std::optional<int64_t> restart = RestartCollateral();
  return {{"id", id},
          {"tenant", tenant},
          {"from", from},
          {"to", to},
          {"layout", layout},
          {"state", state},
          {"step", step},
          {"paused_after", paused_after.empty() ? nlohmann::json() : nlohmann::json(paused_after)},
          {"next_step", next_step.empty() ? nlohmann::json() : nlohmann::json(next_step)},
          {"external_steps", external_steps},
          {"rows", rows},
          {"sessions_selected", sessions_selected},
          {"sessions_reset", sessions_reset},
          {"sessions_gone", sessions_gone},
          {"sessions_failed", sessions_failed},
          {"sessions_by_host", sessions_by_host},
          {"pacing", pacing},
          {"collateral", total ? nlohmann::json(*total) : nlohmann::json()},
          {"sessions_collateral", sessions_collateral},
          {"collateral_detail",
           {{"sessions", sessions_collateral}, {"target_restart", restart ? nlohmann::json(*restart) : nlohmann::json()}}},
          {"online_before", online_before},
          {"reconnected", reconnected},
          {"reauth", reauth},
          {"stragglers", stragglers},
          {"spared", spared},
          {"client_addresses", client_addresses},
          {"shared_addresses", shared},
          {"shared_reset", shared_reset},
          {"route_before", route_before},
          {"route_after", route_after},
          {"reloaded_target", reloaded_target},
          {"target_restart", target_restart ? target_restart->ToJson() : nlohmann::json()},
          {"risks", risk_list},
          {"conflicts", conflicts},
          {"warnings", warnings},
          {"policy", policy},
          {"parity", parity},
          {"tailnet", tailnet},
          {"ghosts", ghosts},
          {"timings_ms", timings}};
}

std::string MigrationReport::ToText() const {
  std::ostringstream o;
  o << "migration " << (id.empty() ? "(plan)" : id) << ": tenant " << tenant << " cluster " << from << " -> " << to
    << " [" << layout << "] state " << state << "\n";
  if (!paused_after.empty()) {
    o << "  paused after " << paused_after << (next_step.empty() ? "" : "; `headshift resume " + id + "` continues at " + next_step)
      << "\n";
  }
  if (!external_steps.empty()) {
    o << "  done outside headshift (recorded):";
    for (const auto& s : external_steps) o << " " << s;
    o << "\n";
  }
  if (!rows.empty()) {
    o << "  rows:";
    for (const auto& [t, n] : rows) o << " " << t << "=" << n;
    o << "\n";
  }
  if (!route_before.empty() || !route_after.empty()) {
    o << "  route: " << route_before << " -> " << route_after << "\n";
  }
  o << "  sessions: selected " << sessions_selected << ", reset " << sessions_reset << ", gone " << sessions_gone
    << ", failed " << sessions_failed << ", collateral " << sessions_collateral << "\n";
  if (pacing.is_object()) {
    o << "  pacing: " << pacing.value("mode", std::string("?"));
    if (pacing.contains("waves") && pacing["waves"].is_array() && !pacing["waves"].empty()) {
      o << ", " << pacing["waves"].size() << " wave(s) by " << (pacing["signal"].is_string() ? pacing["signal"].get<std::string>() : "?");
      if (pacing["absorb_per_s"].is_number()) o << ", target absorbed " << pacing["absorb_per_s"].get<double>() << " devices/s";
    }
    if (pacing.value("cap_per_s", int64_t{0}) > 0) o << " (cap " << pacing["cap_per_s"].get<int64_t>() << "/s)";
    if (pacing.contains("fallback") && pacing["fallback"].is_string()) o << "; " << pacing["fallback"].get<std::string>();
    o << "\n";
  }
  if (target_restart) {
    o << "  target restart: " << target_restart->Describe() << "\n";
    if (!target_restart->stragglers.empty()) {
      o << "    not back on cluster " << target_restart->cluster << ":";
      for (const auto& s : target_restart->stragglers) o << " " << s;
      o << "\n";
    }
  }
  std::optional<int64_t> total = Collateral();
  if (!total || *total != sessions_collateral) {
    o << "  collateral (other tenants' devices disturbed): " << (total ? std::to_string(*total) : std::string("unknown"))
      << " (sessions " << sessions_collateral << ", target restart "
      << (total ? std::to_string(*total - sessions_collateral) : std::string("unknown")) << ")\n";
  }
  if (!shared_addresses.empty()) {
    o << "  shared client addresses (" << (shared_reset ? "reset anyway: --allow-shared" : "spared") << "):";
    for (const auto& [addr, tenants] : shared_addresses) {
      o << " " << addr << " (";
      for (size_t i = 0; i < tenants.size(); ++i) o << (i ? "," : "") << tenants[i];
      o << ")";
    }
    o << "\n";
  }
  if (online_before > 0 || reconnected > 0) {
    o << "  devices: online before " << online_before << ", reconnected on target " << reconnected << ", reauth "
      << reauth << "\n";
  }
  if (!spared.empty()) {
    o << "  spared (shared address, move at their next reconnect): " << spared.size() << "\n";
  }
  if (!stragglers.empty()) {
    o << "  stragglers:";
    for (const auto& s : stragglers) o << " " << s;
    o << "\n";
  }
  if (policy.is_object() && policy.value("read", false)) {
    for (const char* side : {"source", "target"}) {
      const auto& p = policy[side];
      const auto& diff = p["diff"];
      o << "  policy of cluster " << p.value("cluster", "") << " (" << p.value("mode", "") << "): "
        << (diff.empty() ? std::string("unchanged") : std::to_string(diff.size()) + " change(s)") << "\n";
      for (const auto& line : diff) o << "    " << line.get<std::string>() << "\n";
    }
    if (!policy["owned_tags"].empty()) o << "  tags owned by the tenant: " << policy["owned_tags"].dump() << "\n";
  }
  if (tailnet.is_object()) {
    o << "  tailnet on target: "
      << (tailnet.value("checked", false)
              ? (tailnet.value("differences", 0) == 0 ? std::string("same as on the source")
                                                      : std::to_string(tailnet.value("differences", 0)) + " difference(s)")
              : "not checked (" + tailnet.value("reason", std::string()) + ")")
      << "\n";
  }
  if (ghosts.is_object() && ghosts.value("deleted", 0) > 0) {
    o << "  stale node entries removed from cluster " << ghosts.value("cluster", "") << ": " << ghosts["deleted"] << "\n";
  }
  for (const auto& r : risks) o << "  risk: " << r.kind << ": " << r.message << "\n";
  for (const auto& w : warnings) o << "  warning: " << w << "\n";
  if (conflicts.is_array() && !conflicts.empty()) {
    o << "  conflicts (" << conflicts.size() << "):\n";
    for (const auto& c : conflicts) {
      o << "    - " << (c.contains("message") ? c["message"].get<std::string>() : c.dump()) << "\n";
    }
  }
  if (!timings_ms.empty()) {
    o << "  timings:";
    for (const auto& s : MigrationSteps()) {
      auto it = timings_ms.find(s);
      if (it == timings_ms.end()) continue;
      char buf[64];
      snprintf(buf, sizeof buf, " %s=%.0fms", s.c_str(), it->second);
      o << buf;
    }
    if (auto it = timings_ms.find("total"); it != timings_ms.end()) {
      char buf[64];
      snprintf(buf, sizeof buf, " total=%.0fms", it->second);
      o << buf;
    }
    o << "\n";
  }
  return o.str();
}

}  // namespace headshift
