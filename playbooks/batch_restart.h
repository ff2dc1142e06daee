// Batch restart: makes a target cluster serve the copied node keys of SEVERAL tenants with at most one
// run of its reload command (a restart on headscale >= 0.27), for drain / rebalance / apply / multi-tenant
// migrate (playbooks/target_batch.h). It is target_ready (playbooks/steps/target_ready.cc) for a set of
// tenants: the target's API is read first and the reload runs only when the API answers without some
// of the keys (an API that does not answer is polled, never restarted on a guess; a target that
// already serves every key is not touched). The restart's collateral is accounted as target_ready
// does (playbooks/target_restart_accounting.h): the devices online on the target, of tenants whose
// rows live there and that are not being moved in, are counted before the reload and waited for
// afterwards (timeouts.reconnect_ms, growing with their number).
//
// Thread-safety: uses the env's mover and API clients from the calling thread only.
#pragma once

#include <set>
#include <string>
#include <vector>

#include "common/status.h"
#include "playbooks/migration_env.h"
#include "playbooks/migration_report.h"
#include "playbooks/target_restart.h"

namespace headshift {

struct BatchRestartOutcome {
  TargetRestartReport report;  // cluster-level: reload_needed, reloaded, restarted, devices, reconnected
  std::vector<std::string> tenants;  // whose keys the target was made to serve
  std::string reason;                // "batch" (before the cuts) or "late_devices" (after them)
  int64_t node_keys = 0;             // keys checked
  nlohmann::json ToJson() const;
};

// The target's own devices online now, the ones its restart drops: of tenants whose rows live on `to`,
// not in `moving`. Fills tr.devices/tenants; nullopt (and tr.unknown_reason) when the API cannot be
// read: the count is then unknown, never 0.
std::optional<OnlineDevices> CountTargetOwnDevices(MigrationEnv& env, const std::string& to,
                                                   const std::set<std::string>& moving, TargetRestartReport& tr);

// Makes cluster `to` serve the node keys of `tenants` (their rows on `to`, not deleted or expired).
// `moving`: tenants whose devices are not on `to` yet (the batch being moved in): never counted as
// collateral. Failed when the reload command fails or the keys are not served within
// timeouts.target_ready_ms; the outcome's report is filled as far as it got (a reload that ran is
// reported even then). REQUIRES: `to` is a configured cluster.
Status RestartTargetOnce(MigrationEnv& env, const std::string& to, const std::vector<std::string>& tenants,
                         const std::set<std::string>& moving, BatchRestartOutcome& out);

}  // namespace headshift
