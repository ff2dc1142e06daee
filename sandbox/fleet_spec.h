// FleetSpec: the client fleet's spec file, written by `headshift sandbox up` from the seeded rows and
// read by every hs-fleet shard: one entry per simulated tailscale client.
//
// Pure functions; thread-safe.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/status.h"

namespace headshift::sandbox {

struct FleetClientSpec {
  std::string tenant;
  std::string name;         // the node's given_name
  std::string node_key;     // nodekey:…
  std::string machine_key;  // mkey:…
  std::string source_ip;    // source address to bind (tenant's public address, or a shared NAT address)
  std::string connect;      // proxy address "ip:port"
  std::string host;         // Host header, e.g. hsa.demo.com
  std::string endpoints;    // JSON array the client reports (as headscale stores it)
};

// The fleet spec file: {"clients": [ {tenant, name, node_key, machine_key, source_ip, connect, host,
// endpoints}, … ]}.
nlohmann::json FleetSpecToJson(const std::vector<FleetClientSpec>& clients);
StatusOr<std::vector<FleetClientSpec>> LoadFleetSpec(const std::string& path);

}  // namespace headshift::sandbox
