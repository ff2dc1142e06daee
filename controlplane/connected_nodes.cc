#include "controlplane/connected_nodes.h"

#include <nlohmann/json.hpp>

namespace headshift {

StatusOr<std::set<std::string>> ParseBatcherConnected(const std::string& body) {
  auto j = nlohmann::json::parse(body, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("connected_nodes")) {
    return Status::BadInput("/debug/batcher: not {\"connected_nodes\": {...}} JSON",
                            "is debug_url headscale's metrics_listen_addr (v0.27 or newer)?");
  }
  std::set<std::string> out;
  const auto& nodes = j["connected_nodes"];
  if (nodes.is_null()) return out;  // Go's encoding of an empty map it never made
  if (!nodes.is_object()) return Status::BadInput("/debug/batcher: \"connected_nodes\" is not an object");
  for (auto it = nodes.begin(); it != nodes.end(); ++it) {
    if (!it.value().is_object() || !it.value().contains("connected") || !it.value()["connected"].is_boolean()) {
      return Status::BadInput("/debug/batcher: node " + it.key() + " has no boolean \"connected\"");
    }
    if (it.value()["connected"].get<bool>()) out.insert(it.key());
  }
  return out;
}

namespace {
std::string Trimmed(std::string s) {
  while (!s.empty() && s.back() == '/') s.pop_back();
  return s;
}
}  // namespace

ConnectedNodesReader::ConnectedNodesReader(std::string control_url, std::string api_key, std::string debug_url,
                                           int64_t timeout_ms)
    : debug_url_(Trimmed(std::move(debug_url))),
      timeout_ms_(timeout_ms),
      api_(std::move(control_url), std::move(api_key), timeout_ms),
      use_batcher_(!debug_url_.empty()) {
  if (!use_batcher_) batcher_unused_ = "debug_url not configured";
}

StatusOr<std::set<std::string>> ConnectedNodesReader::FromBatcher() {
  HttpRequestOptions o;  // HttpClient always sends Accept: application/json, which selects the JSON form
  o.timeout_ms = timeout_ms_;
  auto r = http_.Get(debug_url_ + "/debug/batcher", o);
  if (!r.ok()) return r.status();
  if (r->status != 200) {
    return Status::Failed(debug_url_ + "/debug/batcher answered HTTP " + std::to_string(r->status),
                          r->status == 403 ? "headscale's debug listener answers only loopback and private addresses"
                                           : "");
  }
  return ParseBatcherConnected(r->body);
}

StatusOr<std::set<std::string>> ConnectedNodesReader::FromApi(const std::set<std::string>& ids,
                                                               const std::string& user) {
  auto nodes = api_.ListNodes(list_all_ ? "" : user);
  if (!nodes.ok()) return nodes.status();
  std::set<std::string> listed, out;
  for (const auto& n : *nodes) {
    if (!ids.count(n.id)) continue;
    listed.insert(n.id);
    if (n.online) out.insert(n.id);
  }
  if (!list_all_ && !user.empty() && listed.size() < ids.size()) {
    list_all_ = true;  // tagged devices are not listed under their former user
    return FromApi(ids, user);
  }
  return out;
}

StatusOr<std::set<std::string>> ConnectedNodesReader::Connected(const std::set<std::string>& ids,
                                                                const std::string& user) {
  if (use_batcher_) {
    auto b = FromBatcher();
    if (b.ok()) {
      source_ = "batcher";
      std::set<std::string> out;
      for (const auto& id : *b) {
        if (ids.count(id)) out.insert(id);
      }
      return out;
    }
    use_batcher_ = false;
    batcher_unused_ = b.status().ToString();
  }
  auto a = FromApi(ids, user);
  if (a.ok()) source_ = "api";
  return a;
}

}  // namespace headshift
