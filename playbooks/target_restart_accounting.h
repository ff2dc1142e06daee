// Target-restart accounting: what reloading a target cluster costs the *other* tenants on it, for
// plan/preflight (an estimate, and the risk `target_restart`) and for target_ready (the count taken
// right before a reload that restarts it). Builds on playbooks/target_restart.h (the API reads).
//
// Thread-safety: uses the env's mover and API clients; PlanTargetRestart/CountOtherTenants only
// touch the API (safe on preflight's control-plane thread), KeepResidentTenants reads the database.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "playbooks/migration_env.h"
#include "playbooks/migration_report.h"
#include "playbooks/target_restart.h"

namespace headshift {

// What reloading `target` would cost now: whether a reload is expected (the target caches nodes, so
// copied rows need one), whether it restarts the control plane, and the other tenants' devices
// online there (unknown, never 0, when its API cannot be read).
TargetRestartReport PlanTargetRestart(MigrationEnv& env, const std::string& tenant, const ClusterConfig& target);

// Fills tr.devices/tenants with the other tenants' devices online on `cluster` now (or
// tr.unknown_reason); returns them for a later wait.
std::optional<OnlineDevices> CountOtherTenants(MigrationEnv& env, const std::string& tenant,
                                               const std::string& cluster, TargetRestartReport& tr);

// Keeps only the tenants whose rows live on `cluster` (the database's view). A control plane still
// lists a tenant that just moved away as online during its disconnect grace period (headscale:
// 10 s), yet those devices are on another cluster already and a restart does not touch them. When
// the database cannot say, the count is kept as it is (an overcount, never an undercount).
void KeepResidentTenants(MigrationEnv& env, const std::string& cluster, TargetRestartReport& tr,
                         OnlineDevices* online);

// After a restart of the target at `reloaded_at` (its API answers again): waits for the devices it
// dropped (`dropped`, nullopt when they could not be counted) and records reconnected, stragglers and
// reconnect_ms in `tr`. Shared by target_ready (one tenant) and the batch restart (several).
void AwaitDroppedDevices(HeadscaleClient& api, const std::optional<OnlineDevices>& dropped, int64_t reconnect_ms,
                         std::chrono::steady_clock::time_point reloaded_at, TargetRestartReport& tr);

// The target_restart risk (and, with no_target_restart, the refusal in `problems`) of a planned reload.
void AddRestartRisk(const std::string& tenant, const TargetRestartReport& tr, bool no_target_restart,
                    std::vector<Risk>& risks, std::vector<std::string>& problems);

}  // namespace headshift
