// TenantFacts: what the orchestrator needs to know about a tenant's devices and the clusters' load,
// read from the database (headscale's API does not expose endpoints):
//  - Nodes(): each device's id, names, keys, tailnet IPs, endpoints (parsed), last_seen/expiry;
//  - PublicClientAddresses(): the distinct non-private IPs in the devices' endpoints — the clients'
//    public (STUN / port-mapped) addresses, used to select their control connections on the proxy;
//  - Load(): devices per tenant per cluster, for drain and rebalance.
// A tenant's devices include its tagged ones (no user; tags owned by the tenant alone, per the context's
// tag ownership: MoveContext::SetTagOwnership).
// All read-only.
//
// Thread-safety: not thread-safe (uses the context's connections).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "migrate/move_context.h"

namespace headshift::migrate {

struct Endpoint {
  std::string ip;  // without brackets
  uint16_t port = 0;
};

struct TenantNode {
  int64_t id = 0;
  std::optional<int64_t> user_id;
  std::string given_name;
  std::string hostname;
  std::string node_key;
  std::string machine_key;
  std::string disco_key;
  std::string ipv4;
  std::string ipv6;
  std::vector<Endpoint> endpoints;
  std::string last_seen;   // ISO 8601 UTC, "" if NULL
  std::string expiry;      // "" = never expires
  bool expired = false;    // expiry in the past
  bool deleted = false;    // soft-deleted (deleted_at set)

  nlohmann::json ToJson() const;
};

struct ClusterLoad {
  // cluster id -> tenant -> live devices (tenants with no device appear with 0).
  std::map<std::string, std::map<std::string, int64_t>> devices;
  int64_t Total(const std::string& cluster) const;
  nlohmann::json ToJson() const;
};

class TenantFacts {
 public:
  explicit TenantFacts(MoveContext& ctx) : ctx_(ctx) {}

  // The tenant's devices on `cluster` (profile devices table; headscale column names, missing columns
  // read as empty), in id order. Empty if the tenant is not there.
  StatusOr<std::vector<TenantNode>> Nodes(const std::string& tenant, const std::string& cluster);
  // Distinct public endpoint IPs of the tenant's live devices, sorted.
  StatusOr<std::vector<std::string>> PublicClientAddresses(const std::string& tenant, const std::string& cluster);
  // Devices per tenant on every configured cluster.
  StatusOr<ClusterLoad> Load();

 private:
  MoveContext& ctx_;
};

// Parses headscale's nodes.endpoints JSON (["203.0.113.5:41641","[2001:db8::1]:41641"]). Entries that
// are not ip:port are skipped; non-JSON text yields an empty list.
std::vector<Endpoint> ParseEndpoints(const std::string& json_text);

// False for addresses a client's public NAT address can never be: RFC 1918, CGNAT 100.64/10 (the
// tailnet), loopback, link-local, 0/8, multicast, reserved 240/4, IPv6 unspecified/loopback/link-local/
// ULA (fc00::/7, includes the tailnet fd7a:115c:a1e0::/48)/multicast; IPv4-mapped IPv6 is judged by its
// IPv4. Documentation and benchmarking ranges (192.0.2/24, 198.51.100/24, 203.0.113/24, 198.18/15,
// 2001:db8::/32) count as public: labs use them as client addresses. Invalid text is not public.
bool IsPublicClientAddress(const std::string& ip);

}  // namespace headshift::migrate
