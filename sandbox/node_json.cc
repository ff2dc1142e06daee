#include "sandbox/node_json.h"

#include <ctime>

#include <nlohmann/json.hpp>

namespace headshift::sandbox {
namespace {

std::string RegisterMethodEnum(const std::string& m) {
  if (m == "authkey") return "REGISTER_METHOD_AUTH_KEY";
  if (m == "cli") return "REGISTER_METHOD_CLI";
  if (m == "oidc") return "REGISTER_METHOD_OIDC";
  return "REGISTER_METHOD_UNSPECIFIED";
}

nlohmann::json JsonArrayOrEmpty(const std::string& text) {
  auto j = nlohmann::json::parse(text, nullptr, false);
  return j.is_array() ? j : nlohmann::json::array();
}

}  // namespace

std::string Rfc3339(int64_t wall_ms) {
  time_t s = static_cast<time_t>(wall_ms / 1000);
  tm t{};
  gmtime_r(&s, &t);
  char buf[64];
  snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", t.tm_year + 1900, t.tm_mon + 1, t.tm_mday,
           t.tm_hour, t.tm_min, t.tm_sec, static_cast<int>(wall_ms % 1000));
  return buf;
}

std::string HeadscaleNodesJson(const std::vector<StandinNode>& nodes,
                               const std::function<bool(const std::string&)>& online,
                               const std::unordered_map<std::string, std::string>& last_seen_by_key) {
  nlohmann::json arr = nlohmann::json::array();
  for (const auto& n : nodes) {
    nlohmann::json ips = nlohmann::json::array();
    if (!n.ipv4.empty()) ips.push_back(n.ipv4);
    if (!n.ipv6.empty()) ips.push_back(n.ipv6);
    std::string last_seen = n.last_seen;
    if (auto it = last_seen_by_key.find(n.node_key); it != last_seen_by_key.end()) last_seen = it->second;
    nlohmann::json j = {
        {"id", std::to_string(n.id)},
        {"machineKey", n.machine_key},
        {"nodeKey", n.node_key},
        {"discoKey", n.disco_key},
        {"ipAddresses", ips},
        {"name", n.hostname},
        {"user",
         {{"id", n.user_id},
          {"name", n.user_name},
          {"createdAt", n.user_created_at},
          {"displayName", n.user_display_name},
          {"email", n.user_email},
          {"providerId", n.user_provider_id},
          {"provider", n.user_provider},
          {"profilePicUrl", n.user_picture}}},
        {"createdAt", n.created_at},
        {"registerMethod", RegisterMethodEnum(n.register_method)},
        {"givenName", n.given_name},
        {"online", online(n.node_key)},
        {"approvedRoutes", JsonArrayOrEmpty(n.approved_routes)},
        {"availableRoutes", nlohmann::json::array()},
        {"subnetRoutes", nlohmann::json::array()},
        {"tags", JsonArrayOrEmpty(n.tags)},
    };
    if (!last_seen.empty()) j["lastSeen"] = last_seen;
    if (n.expiry_ms != 0) j["expiry"] = Rfc3339(n.expiry_ms);
    arr.push_back(std::move(j));
  }
  return nlohmann::json{{"nodes", arr}}.dump();
}

}  // namespace headshift::sandbox
