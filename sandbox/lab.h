// Lab: the sandbox — a self-contained headscale deployment in network namespaces on this host, the
// ground of the demo, the e2e tests and the benchmarks.
//
//   root netns (headshift runs here) ──veth── sandbox-<name>-c<id>   headscale-standin per cluster
//   sandbox-<name>-clients  ──veth──  [sandbox-<name>-lb: DNAT+masquerade]  ──veth──  sandbox-<name>-edge
//     hs-fleet shards bind the tenants'       (optional, --lb)                     HAProxy :80 :443
//     public/NAT source addresses                                                    ──veth── each c<id>
//   PostgreSQL (unix socket in the state dir), seeded with headscale-shaped tenants.
//
// Addresses: one free 10.x.y.0/24 of the root netns (point-to-point /30s); client source addresses
// from 198.18.0.0/15 (local route in the clients netns). No namespace has a default route.
//
// LabUp writes <state>/headshift.yaml (validated with headshift's own config parser) so
// `headshift --config <state>/headshift.yaml …` works against the lab, and <state>/lab.json (what
// LabDown needs to remove everything, and what LabStatus reports). A previous lab with the same name
// or state dir is removed first (and dead labs of LabOptions::sweep_prefix); a failure or
// SIGINT/SIGTERM during LabUp removes what was made.
// LabDown leaves no namespace, veth, process or file behind; it also works from leftovers alone
// (no lab.json): namespaces by name, processes by the namespace they run in, PostgreSQL by its pid file.
// Every resource carries the lab's prefix (sandbox/lab_naming.h), so `up` first sweeps what a dead
// lab of the same name left (its lab.json, namespaces, veths, processes, state dir) and never
// touches another lab's.
//
// Layout: lab_plan (options -> tenants), lab_builder (the parts of `up`: lab_network, lab_database,
// lab_standins, lab_edge, lab_fleet, lab_config, sequenced in lab_up), lab_down (teardown),
// lab_status (status, reset-stats), over lab_naming, lab_inventory and lab_commands.
//
// REQUIRES: root (network namespaces, veths, nftables), postgresql, haproxy, iproute2, nftables.
// Thread-safety: LabUp/LabDown of one lab must not run concurrently (they take a host-wide lock for
// address allocation; distinct names never collide).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/config.h"
#include "common/status.h"
#include "sandbox/headscale_schema.h"
#include "sandbox/standin_server.h"

namespace headshift::sandbox {

struct LabTenant {
  std::string name;
  std::string cluster;  // "" = spread over the clusters (first tenant on the first cluster)
  int devices = -1;     // -1 = LabOptions::devices
};

struct LabOptions {
  std::string name = "lab";               // [a-z0-9-], at most 24 chars; names namespaces and files
  std::string state_dir;                  // default /tmp/headshift-sandbox-<name>
  std::vector<std::string> clusters = {"3", "4"};
  int tenant_count = 3;                   // used when `tenants` is empty: hsa, hsb, hsc, …
  std::vector<LabTenant> tenants;
  int devices = 70;                       // per tenant
  DbLayout layout = DbLayout::kShared;
  ClusterIdType cluster_id_type = ClusterIdType::kBigint;
  LookupMode lookup = LookupMode::kPerRequest;
  bool reload_command = true;             // clusters get reload_command: [kill, -HUP, <stand-in pid>]
  // The stand-ins' reload acts as a restart (drops every connection), as headscale >= 0.27's only
  // reload does; the config then says reload_drops_sessions: true (else false: SIGHUP drops nothing).
  bool reload_drops_sessions = false;
  bool different_noise_keys = false;      // clusters after the first answer /key with other keys
  // Slow control planes on purpose: cluster id -> new control streams its stand-in serves per second
  // (StandinOptions::absorb_per_s); clusters not listed serve as fast as they can.
  std::map<std::string, int64_t> absorb_per_s;
  bool lb = false;                        // DNAT + masquerade netns in front of the edge
  double shared_nat_share = 0.0;          // share of each tenant pair's devices behind one shared address
  double https_share = 0.1;               // share of clients dialing :443 instead of :80
  int clients_per_process = 10000;        // fleet shard size (<= ~19,000: 20,000 fds per process)
  int64_t keepalive_ms = 1000;
  int64_t disconnect_grace_ms = 10000;
  bool fleet = true;                      // start the client fleet
  int64_t connected_timeout_ms = 60000;   // LabUp waits this long for every client to connect
  std::string bin_dir;                    // where headscale-standin and hs-fleet live (default: auto)
  // With a `name` that starts with it: before anything is made, `up` removes every lab in a default
  // state dir whose name starts with `sweep_prefix` and whose owner (the process that ran its LabUp,
  // recorded in lab.json) is gone, e.g. the labs of test runs killed by a timeout ("e2emig-" for
  // "e2emig-<pid>"). Labs with a living owner, or without a lab.json, are never touched.
  std::string sweep_prefix;
};

// Everything a caller needs to drive the lab (also in lab.json).
struct LabInfo {
  std::string name;
  std::string state_dir;
  std::string config_path;  // <state>/headshift.yaml
  nlohmann::json json;      // the lab.json content
};

// The default state dir for a lab name.
std::string DefaultStateDir(const std::string& name);
// Checks options (names, counts, shares) without changing anything. BadInput naming the field.
Status ValidateLabOptions(const LabOptions& o);

// Brings the lab up; on any failure (or SIGINT/SIGTERM while it runs) removes what it made.
StatusOr<LabInfo> LabUp(const LabOptions& options);

// Removes the lab in `state_dir` (or, if that has no lab.json, the leftovers of lab `name`).
// Returns what was removed as JSON {processes, netns, links, state_dir[, already_gone]}: already_gone
// names resources lab.json records that were gone before teardown reached them. Every cleanup step
// runs even if an earlier one failed; each failure is logged and, at the end, Failed names all of
// them (lab.json is then kept, so a later LabDown has the whole record).
StatusOr<nlohmann::json> LabDown(const std::string& name, const std::string& state_dir);

struct LabQuery {
  bool wait_connected = false;   // until every client is connected
  std::string tenant;            // with on_cluster: until all of tenant's clients are connected there
  std::string on_cluster;
  int64_t timeout_ms = 30000;
};

// The lab's state: processes (alive?), clusters, edge, and the fleet's per-tenant summary (at least as
// new as this call). With a wait in `query`, polls until it holds; Failed (with the JSON) on timeout.
struct LabStatusResult {
  Status status;
  nlohmann::json json;
};
LabStatusResult LabStatus(const std::string& state_dir, const LabQuery& query);

// SIGUSR1 to every fleet shard (counters to zero) and waits until all report the new epoch.
Status LabResetStats(const std::string& state_dir);

}  // namespace headshift::sandbox
