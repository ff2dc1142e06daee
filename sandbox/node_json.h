// NodeJson: the stand-in's answer to GET /api/v1/node, shaped as headscale's (id as a string,
// nodeKey, machineKey, user{…}, online, lastSeen, RFC 3339 times, REGISTER_METHOD_* enums), so
// headshift's controlplane client reads it exactly as it reads headscale's.
//
// Pure functions; thread-safe.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <unordered_map>
#include <vector>

#include "sandbox/node_directory.h"

namespace headshift::sandbox {

// {"nodes": [...]} for `nodes`; `online(node_key)` says whether a node has a live session;
// `last_seen` (node_key -> RFC 3339) overrides the rows' last_seen (cached mode writes only the DB).
std::string HeadscaleNodesJson(const std::vector<StandinNode>& nodes,
                               const std::function<bool(const std::string&)>& online,
                               const std::unordered_map<std::string, std::string>& last_seen);
// "2006-01-02T15:04:05.000Z" for a wall-clock time in ms.
std::string Rfc3339(int64_t wall_ms);

}  // namespace headshift::sandbox
