// RunArgv: runs a command as an argv vector (never through a shell), with a deadline, capturing
// stdout and stderr. Used for control-plane reload commands and playbook hooks.
//
// The child gets stdin from /dev/null, its own process group, default signal dispositions and an
// empty signal mask (headshift ignores SIGPIPE; a child must not inherit that), and headshift's
// environment minus every variable whose value holds a registered secret (common/redact.h: the
// DSNs and API keys the config read from `*_env`). The deadline covers the whole run: output,
// exit, and a child that closed its output early. A command that exits while something it started
// in the background still holds its output is done when it exits (that process is left running).
#pragma once

#include <string>
#include <vector>

#include "common/status.h"

namespace headshift {

struct ProcessResult {
  int exit_code = -1;     // exit status, or -1 if killed by a signal / timed out (its group is killed)
  bool timed_out = false;
  std::string output;     // stdout and stderr interleaved, truncated to 64 KiB
};

// REQUIRES: !argv.empty(). Returns Failed if the program cannot be started; otherwise the result
// (a non-zero exit is not an error at this level).
StatusOr<ProcessResult> RunArgv(const std::vector<std::string>& argv, int64_t timeout_ms);

}  // namespace headshift
