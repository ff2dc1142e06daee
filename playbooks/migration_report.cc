#include "playbooks/migration_report.h"

#include <cstdio>
#include <sstream>

namespace headshift {

nlohmann::json MigrationReport::ToJson() const {
  nlohmann::json shared = nlohmann::json::object();
  for (const auto& [addr, tenants] : shared_addresses) shared[addr] = tenants;
  nlohmann::json timings = nlohmann::json::object();
  for (const auto& [k, v] : timings_ms) timings[k] = static_cast<int64_t>(v + 0.5);
  return {{"id", id},
          {"tenant", tenant},
          {"from", from},
          {"to", to},
          {"layout", layout},
          {"state", state},
          {"step", step},
          {"rows", rows},
          {"sessions_selected", sessions_selected},
          {"sessions_reset", sessions_reset},
          {"sessions_gone", sessions_gone},
          {"sessions_failed", sessions_failed},
          {"sessions_by_host", sessions_by_host},
          {"collateral", collateral},
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
          {"risks", risks},
          {"conflicts", conflicts},
          {"warnings", warnings},
          {"timings_ms", timings}};
}

std::string MigrationReport::ToText() const {
  std::ostringstream o;
  o << "migration " << (id.empty() ? "(plan)" : id) << ": tenant " << tenant << " cluster " << from << " -> " << to
    << " [" << layout << "] state " << state << "\n";
  if (!rows.empty()) {
    o << "  rows:";
    for (const auto& [t, n] : rows) o << " " << t << "=" << n;
    o << "\n";
  }
  if (!route_before.empty() || !route_after.empty()) {
    o << "  route: " << route_before << " -> " << route_after << "\n";
  }
  o << "  sessions: selected " << sessions_selected << ", reset " << sessions_reset << ", gone " << sessions_gone
    << ", failed " << sessions_failed << ", collateral " << collateral << "\n";
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
  for (const auto& r : risks) o << "  risk: " << r << "\n";
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
