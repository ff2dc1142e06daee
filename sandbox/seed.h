// Seeder: fills a headscale-shaped database (sandbox/headscale_schema.h) with tenants, pre-auth
// keys and nodes that look like production rows: `mkey:`/`nodekey:`/`discokey:` keys, JSON
// endpoints holding the client's public address (what the dataplane selects on) next to a LAN
// address, host_info JSON, per-cluster tailnet IPs from 100.64.0.0/10 and fd7a:115c:a1e0::/48,
// unique given_names per cluster, nodes registered with a tenant pre-auth key.
//
// Generation happens in SQL (generate_series), so 50,000 nodes take well under a second.
// Node keys are a deterministic function of (tenant, index); NodeCredentials() reads them back.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/pg.h"
#include "common/status.h"

namespace headshift::sandbox {

struct SeedTenant {
  std::string name;        // headscale user name (the tenant)
  std::string cluster_id;  // "3"
  int devices = 10;
  // Client public IPv4 addresses: device i uses public_base + (i % public_addresses), except the
  // first `shared_devices` devices, which use `shared_address` (one NAT for two tenants).
  std::string public_base = "198.18.0.1";
  int public_addresses = 1;
  std::string shared_address;
  int shared_devices = 0;
  int ip_offset = 0;  // first tailnet IP index within the cluster (callers keep clusters disjoint)
  int pre_auth_keys = 2;
};

struct SeedSpec {
  std::vector<SeedTenant> tenants;
  bool cluster_id_is_text = false;  // must match the column type
  bool with_cluster_id = true;      // false: a stock headscale schema (no cluster column; the DSN is the cluster)
};

// Inserts the tenants into `conn` (one database: shared layout, or one cluster's DB in split).
// Tailnet IPs are allocated per cluster from each tenant's ip_offset.
Status SeedTenants(PgConn& conn, const SeedSpec& spec);

struct NodeCredential {
  int64_t id;
  std::string tenant;
  std::string given_name;
  std::string node_key;
  std::string machine_key;
  std::string public_ip;  // the non-private endpoint address
  std::string endpoints;  // the nodes.endpoints JSON text
};

// All nodes of `tenant` (any cluster) in id order.
StatusOr<std::vector<NodeCredential>> NodeCredentials(PgConn& conn, const std::string& tenant);

// Adds `n` to a dotted IPv4 address ("198.18.0.1" + 3 = "198.18.0.4").
std::string AddToIpv4(const std::string& base, uint32_t n);

}  // namespace headshift::sandbox
