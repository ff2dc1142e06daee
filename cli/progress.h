// Progress lines on stderr for long commands: on a TTY (and not --json), one line per step with its
// elapsed time; otherwise silent (logs still go to stderr at info level).
#pragma once

#include <functional>
#include <string>

#include "cli/command.h"

namespace headshift::cli {

// For TenantMigration: (tenant, step, done, ms).
std::function<void(const std::string&, const std::string&, bool, double)> StepProgress(Context& ctx);
// For FleetOps: one line per event.
std::function<void(const std::string&)> LineProgress(Context& ctx);

}  // namespace headshift::cli
