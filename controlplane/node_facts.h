// NodeFactsReader: what two headscale nodes must agree on for a tenant to move between them, read from
// the node itself (headscale v0.29):
//   * Noise public key: GET <control_url>/key?v=130 (HeadscaleClient::NoiseKey);
//   * version: GET <control_url>/version → {"version", "commit", ...} (hscontrol/handlers.go VersionHandler);
//   * dns.base_domain, MagicDNS, prefixes, policy mode, OIDC issuer: GET <debug_url>/debug/config, the
//     node's types.Config as Go's encoding/json writes it (field names: BaseDomain, PrefixV4, PrefixV6,
//     DNSConfig.MagicDNS, Policy.Mode, OIDC.Issuer; hscontrol/debug.go, types/config.go);
//   * DERP map: GET <debug_url>/debug/derp with Accept: application/json → {"configured", "total_regions",
//     "regions": {ID: {"region_id", "region_name", "nodes": [{"name", "hostname", "derp_port", ...}]}}}
//     (state/debug.go DebugDERPJSON).
// /debug/config holds configuration secrets headscale did not mark json:"-" (database settings): its body
// is parsed here and never logged or returned.
//
// Thread-safety: one instance per thread (it owns HTTP clients).
#pragma once

#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "common/status.h"
#include "controlplane/headscale_client.h"

namespace headshift {

// Facts of one node; a fact not read (no debug_url, or the endpoint failed) is nullopt.
struct NodeFacts {
  std::string node;  // cluster id, for messages
  std::optional<std::string> noise_key;
  std::optional<std::string> version;
  std::optional<std::string> base_domain;
  std::optional<bool> magic_dns;
  std::optional<std::string> prefix_v4;  // "" when the node has none
  std::optional<std::string> prefix_v6;
  std::optional<std::string> policy_mode;  // "file" | "database"
  std::optional<std::string> oidc_issuer;  // "" when OIDC is not configured
  std::optional<nlohmann::json> derp;      // regions as /debug/derp gives them
  std::vector<std::string> unread;         // "debug_url not configured" or an endpoint's failure
};

class NodeFactsReader {
 public:
  // `debug_url` may be empty: only the key and the version are read then.
  NodeFactsReader(std::string node, std::string control_url, std::string debug_url, int64_t timeout_ms);

  // Reads every fact it can; a fact that cannot be read is left unset and its reason added to
  // `unread`. Failed only when the node answers neither /key nor /version (it is not reachable).
  StatusOr<NodeFacts> Read();

  // The compiled packet filter, GET <debug_url>/debug/filter (a JSON array of tailcfg.FilterRule).
  // Failed when debug_url is empty or the endpoint refuses (403 from a non-private address).
  StatusOr<std::string> FilterJson();

  // Body of GET <debug_url><path> (application/json). Failed on a non-200 answer.
  StatusOr<std::string> DebugGet(const std::string& path);

 private:
  std::string node_;
  std::string control_url_;
  std::string debug_url_;
  int64_t timeout_ms_;
  HeadscaleClient client_;
  HttpClient http_;
};

}  // namespace headshift
