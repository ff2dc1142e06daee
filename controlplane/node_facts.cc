#include "controlplane/node_facts.h"

namespace headshift {
namespace {

std::string Trimmed(std::string s) {
  while (!s.empty() && s.back() == '/') s.pop_back();
  return s;
}

// A Go *netip.Prefix field: a string, or null when unset.
std::string PrefixField(const nlohmann::json& cfg, const char* key) {
  return cfg.contains(key) && cfg[key].is_string() ? cfg[key].get<std::string>() : "";
}

}  // namespace

NodeFactsReader::NodeFactsReader(std::string node, std::string control_url, std::string debug_url,
                                 int64_t timeout_ms)
    : node_(std::move(node)),
      control_url_(Trimmed(control_url)),
      debug_url_(Trimmed(std::move(debug_url))),
      timeout_ms_(timeout_ms),
      client_(control_url_, "", timeout_ms) {}

StatusOr<std::string> NodeFactsReader::DebugGet(const std::string& path) {
  if (debug_url_.empty()) {
    return Status::Failed("node " + node_ + ": debug_url not configured",
                          "set clusters[].debug_url to the node's metrics_listen_addr");
  }
  HttpRequestOptions o;
  o.timeout_ms = timeout_ms_;
  auto r = http_.Get(debug_url_ + path, o);
  if (!r.ok()) return r.status().WithContext("node " + node_);
  if (r->status == 403) {
    return Status::Failed("node " + node_ + ": " + debug_url_ + path + " refused this host (HTTP 403)",
                          "headscale's debug listener answers only loopback and private addresses");
  }
  if (r->status != 200) {
    return Status::Failed("node " + node_ + ": " + debug_url_ + path + " answered HTTP " + std::to_string(r->status));
  }
  return std::move(r->body);
}

StatusOr<std::string> NodeFactsReader::FilterJson() { return DebugGet("/debug/filter"); }

StatusOr<NodeFacts> NodeFactsReader::Read() {
  NodeFacts f;
  f.node = node_;
  auto key = client_.NoiseKey();
  if (key.ok()) {
    f.noise_key = *key;
  } else {
    f.unread.push_back("noise key: " + key.status().message());
  }
  HttpRequestOptions o;
  o.timeout_ms = timeout_ms_;
  auto v = http_.Get(control_url_ + "/version", o);
  if (v.ok() && v->status == 200) {
    auto j = nlohmann::json::parse(v->body, nullptr, false);
    if (!j.is_discarded() && j.is_object() && j.contains("version") && j["version"].is_string()) {
      f.version = j["version"].get<std::string>();
    } else {
      f.unread.push_back("version: /version is not {\"version\": ...} JSON");
    }
  } else {
    f.unread.push_back("version: " + (v.ok() ? "HTTP " + std::to_string(v->status) : v.status().message()));
  }
  if (!f.noise_key && !f.version) {
    return Status::Failed("node " + node_ + " (" + control_url_ + ") answers neither /key nor /version",
                          "is control_url the headscale server?");
  }
  if (debug_url_.empty()) {
    f.unread.push_back("debug_url not configured: DNS, prefixes, DERP map, policy mode and OIDC issuer not compared");
    return f;
  }
  auto cfg_text = DebugGet("/debug/config");
  if (cfg_text.ok()) {
    auto cfg = nlohmann::json::parse(*cfg_text, nullptr, false);
    if (cfg.is_discarded() || !cfg.is_object()) {
      f.unread.push_back("/debug/config: not a JSON object");
    } else {
      try {
        f.base_domain = cfg.value("BaseDomain", "");
        if (cfg.contains("DNSConfig") && cfg["DNSConfig"].is_object()) f.magic_dns = cfg["DNSConfig"].value("MagicDNS", false);
        f.prefix_v4 = PrefixField(cfg, "PrefixV4");
        f.prefix_v6 = PrefixField(cfg, "PrefixV6");
        if (cfg.contains("Policy") && cfg["Policy"].is_object()) f.policy_mode = cfg["Policy"].value("Mode", "");
        f.oidc_issuer = cfg.contains("OIDC") && cfg["OIDC"].is_object() ? cfg["OIDC"].value("Issuer", "") : "";
      } catch (const nlohmann::json::exception&) {
        // A field of another type: a headscale this reader does not know; nothing of it is kept.
        f.unread.push_back("/debug/config: unexpected field types (a headscale version this build does not know?)");
      }
    }
  } else {
    f.unread.push_back(cfg_text.status().message());
  }
  auto derp = DebugGet("/debug/derp");
  if (derp.ok()) {
    auto j = nlohmann::json::parse(*derp, nullptr, false);
    if (!j.is_discarded() && j.is_object()) {
      f.derp = j;
    } else {
      f.unread.push_back("/debug/derp: not JSON");
    }
  } else {
    f.unread.push_back(derp.status().message());
  }
  return f;
}

}  // namespace headshift
