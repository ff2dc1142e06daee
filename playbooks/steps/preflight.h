// preflight's checks, for `plan` and `migrate` (the step itself runs before the journal exists, so
// the runner passes over it: see playbooks/steps/preflight.cc).
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "common/status.h"
#include "playbooks/migration_env.h"
#include "playbooks/migration_report.h"
#include "playbooks/tenant_migration.h"

namespace headshift::steps {

// Everything that can refuse a migration, collected at once (read-only). Fills rep (rows,
// conflicts, risks, route before/after, target_restart, online devices). Refused (3) listing every
// problem with its fix; NoPrivilege if a session host cannot be opened. `online_before` (optional)
// receives the names of the source's devices online now. `for_plan`: session hosts opened read-only.
Status RunPreflight(MigrationEnv& env, const std::string& tenant, const std::string& from, const std::string& to,
                    MigrationReport& rep, bool for_plan, nlohmann::json* online_before, const MigrationOptions& opts);

// What the journal keeps of a passed preflight (details keys rows, online_before, route_before,
// risks, ms): reconnected reads online_before, resume/status route_before.
nlohmann::json PreflightDetails(const MigrationReport& rep, const nlohmann::json& online_before, double ms);

}  // namespace headshift::steps
