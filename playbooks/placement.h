// Placement: where tenants should go when a cluster is drained or the fleet is rebalanced.
// Pure functions over a load snapshot (devices per tenant per cluster), so the plans are testable
// and `--dry-run` prints exactly what a real run would do.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"

namespace headshift {

struct TenantLoad {
  std::string tenant;
  std::string cluster;
  int64_t devices = 0;
  std::vector<std::string> allowed_clusters;  // empty = any
};

struct ClusterSlot {
  std::string id;
  int64_t capacity = 0;  // max devices; 0 = unlimited
  bool cordoned = false; // receives no tenants
};

struct PlannedMove {
  std::string tenant;
  std::string from;
  std::string to;
  int64_t devices = 0;
};

// Moves every tenant off `cluster`: largest tenant first, each to the eligible cluster with the
// least devices after the moves planned so far (eligible: not `cluster`, not cordoned, in `to`
// when given, allowed for the tenant, capacity not exceeded). Refused (exit 3) naming each
// tenant that fits nowhere; nothing is planned then.
StatusOr<std::vector<PlannedMove>> PlanDrain(const std::string& cluster, const std::vector<TenantLoad>& tenants,
                                             const std::vector<ClusterSlot>& clusters,
                                             const std::vector<std::string>& to);

struct RebalancePlan {
  std::vector<PlannedMove> moves;
  double mean = 0;                 // mean devices per (non-cordoned) cluster
  int64_t low = 0, high = 0;       // the tolerance band
  bool balanced_after = false;     // every cluster within [low, high] after the moves
  std::vector<std::pair<std::string, int64_t>> before, after;  // devices per cluster
};

// The fewest moves (searched exactly for small inputs, greedily beyond) that bring every
// non-cordoned cluster within `tolerance` (fraction of the mean) of the mean device count, never
// more than `max_moves`, respecting capacity and allowed clusters.
RebalancePlan PlanRebalance(const std::vector<TenantLoad>& tenants, const std::vector<ClusterSlot>& clusters,
                            double tolerance, int max_moves);

}  // namespace headshift
