// RunArgv: runs a command as an argv vector (never through a shell), with a deadline, capturing
// stdout and stderr. Used for control-plane reload commands and playbook hooks.
#pragma once

#include <string>
#include <vector>

#include "common/status.h"

namespace headshift {

struct ProcessResult {
  int exit_code = -1;     // exit status, or -1 if killed by a signal / timed out
  bool timed_out = false;
  std::string output;     // stdout and stderr interleaved, truncated to 64 KiB
};

// REQUIRES: !argv.empty(). Returns Failed if the program cannot be started; otherwise the result
// (a non-zero exit is not an error at this level).
StatusOr<ProcessResult> RunArgv(const std::vector<std::string>& argv, int64_t timeout_ms);

}  // namespace headshift
