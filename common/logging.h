// Logging setup: spdlog to stderr (stdout is reserved for the command's result, e.g. --json), with
// every message passed through Redact() so secrets never reach a log line.
#pragma once

#include <string>

#include "common/status.h"

namespace headshift {

// Installs the redacting stderr logger as spdlog's default. `level` is one of
// trace, debug, info, warn, error, critical, off. Returns BadInput for an unknown level.
Status InitLogging(const std::string& level);

}  // namespace headshift
