// Fleet summaries: each fleet shard writes `<dir>/shard-<i>.json` every ~200 ms (per-tenant
// TenantFleetStats plus its raw interruption samples); ReadFleetSummary() merges the shards into one
// per-tenant view with interruption percentiles. This is what `headshift sandbox status` prints and
// what e2e tests and benchmarks assert on.
//
// Shard file: {"shard": i, "pid": p, "epoch": e, "written_ms": wall ms,
//              "tenants": {"hsa": <TenantFleetStats JSON with "interruptions_ms": [samples]>}}
//
// Thread-safety: plain functions over values.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/status.h"

namespace headshift::sandbox {

struct TenantFleetStats {
  int64_t clients = 0;
  int64_t connected = 0;
  std::map<std::string, int64_t> connected_by_cluster;  // cluster id -> connected clients
  int64_t disconnected_clients = 0;  // clients that lost a live stream at least once
  int64_t disconnects = 0;           // live streams lost
  int64_t reconnects = 0;            // streams re-established after a disconnect
  int64_t rejections = 0;            // "node not found" answers (a device that would need to log in)
  int64_t rejected_clients = 0;
  int64_t errors = 0;                // other failed attempts (refused, proxy 5xx, timeouts)
  int64_t ongoing = 0;               // interruptions still in progress (disconnected, not yet back)
  int64_t ongoing_max_ms = 0;
  std::vector<int64_t> interruptions_ms;  // finished interruptions: disconnect -> served again
  nlohmann::json problems = nlohmann::json::array();  // up to 20 clients not connected / rejected
};

nlohmann::json ShardStatsToJson(const TenantFleetStats& s);  // with raw samples
TenantFleetStats ShardStatsFromJson(const nlohmann::json& j);
void MergeStats(TenantFleetStats& into, const TenantFleetStats& from);

struct FleetSummary {
  std::map<std::string, TenantFleetStats> tenants;
  int shards = 0;
  int shards_missing = 0;   // shard files not (yet) written
  int64_t oldest_written_ms = 0;
  std::vector<int64_t> epochs;
  bool AllConnected() const;
  int64_t Clients() const;
  int64_t Connected() const;
};

// Reads shard-0 .. shard-(shards-1) in `dir`. Waits up to `wait_ms` for every shard file to have
// been written at or after `not_before_ms` (wall clock) so a caller sees a state at least as new as
// its call; returns what it has after that (shards_missing counts files absent).
FleetSummary ReadFleetSummary(const std::string& dir, int shards, int64_t not_before_ms, int64_t wait_ms);

// Public JSON: per tenant {clients, connected, not_connected, connected_by_cluster,
// disconnected_clients, disconnects, reconnects, rejections, rejected_clients, errors,
// interruption_ms: {count, p50, p99, max, ongoing, ongoing_max}, problems}.
nlohmann::json FleetSummaryToJson(const FleetSummary& s);

// Nearest-rank percentile of unsorted samples (q in [0,1]); 0 when empty.
int64_t Percentile(std::vector<int64_t> samples, double q);

}  // namespace headshift::sandbox
