// FleetOps's private state, shared by its two files: fleet_ops.cc (drain, cordon, rebalance, moves)
// and fleet_apply.cc (playbook runs, `headshift apply`). Not part of the interface.
//
// Thread-safety: as FleetOps (one thread).
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/config.h"
#include "common/pg.h"
#include "migrate/tenant_mover.h"
#include "playbooks/fleet_ops.h"
#include "playbooks/target_batch.h"

namespace headshift {

// A fleet's moves pause before the cut, which its playbook runs on every proxy host: a fleet operation
// here would leave each tenant paused half way.
Status RefuseFleet(const Config& config, const std::string& op);

struct FleetOps::Impl {
  Config config;
  std::unique_ptr<migrate::TenantMover> mover;
  std::unique_ptr<TargetBatch> batch;  // opened on first use (cordon/uncordon need no route backend)

  // The batch runner, opened on first use.
  StatusOr<TargetBatch*> Batch();

  // Load snapshot in placement's terms.
  Status Snapshot(std::vector<TenantLoad>* tenants, std::vector<ClusterSlot>* clusters);
  // Runs `moves` through the batch (one restart per target), adopting `adopt` (tenant -> migration id).
  // REQUIRES: Batch() succeeded.
  void Run(const std::vector<PlannedMove>& moves, const std::map<std::string, std::string>& adopt, int concurrency,
           const FleetOptions& opts, FleetReport& rep);
  // headshift_playbook_runs in the (first) journal database (created on first use).
  StatusOr<PgConn*> RunsDb();
};

}  // namespace headshift
