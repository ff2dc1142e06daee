#include "sandbox/fleet_spec.h"

#include "common/atomic_file.h"

namespace headshift::sandbox {

nlohmann::json FleetSpecToJson(const std::vector<FleetClientSpec>& clients) {
  nlohmann::json arr = nlohmann::json::array();
  for (const auto& c : clients) {
    arr.push_back({{"tenant", c.tenant},
                   {"name", c.name},
                   {"node_key", c.node_key},
                   {"machine_key", c.machine_key},
                   {"source_ip", c.source_ip},
                   {"connect", c.connect},
                   {"host", c.host},
                   {"endpoints", c.endpoints}});
  }
  return {{"clients", arr}};
}

StatusOr<std::vector<FleetClientSpec>> LoadFleetSpec(const std::string& path) {
  auto text = ReadFile(path);
  if (!text.ok()) return text.status();
  auto j = nlohmann::json::parse(*text, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("clients") || !j["clients"].is_array()) {
    return Status::BadInput(path + ": not a fleet spec ({\"clients\": [...]})");
  }
  std::vector<FleetClientSpec> out;
  for (const auto& c : j["clients"]) {
    FleetClientSpec s;
    s.tenant = c.value("tenant", "");
    s.name = c.value("name", "");
    s.node_key = c.value("node_key", "");
    s.machine_key = c.value("machine_key", "");
    s.source_ip = c.value("source_ip", "");
    s.connect = c.value("connect", "");
    s.host = c.value("host", "");
    s.endpoints = c.value("endpoints", "[]");
    if (s.tenant.empty() || s.node_key.empty() || s.connect.empty()) {
      return Status::BadInput(path + ": client " + std::to_string(out.size()) + " lacks tenant/node_key/connect");
    }
    out.push_back(std::move(s));
  }
  return out;
}

}  // namespace headshift::sandbox
