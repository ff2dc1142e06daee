// Process exit codes of the headshift CLI (DESIGN.md "CLI contract"). Automation depends on these
// values: never renumber them.
#pragma once

namespace headshift {

enum class ExitCode : int {
  kOk = 0,              // done
  kFailed = 1,          // failed and rolled back / nothing changed
  kBadInput = 2,        // bad input or config; refused before the first write
  kRefused = 3,         // preflight refused (conflict, risk)
  kNeedsOperator = 4,   // partial state left behind; see `headshift status`
  kNoPrivilege = 5,     // missing privilege (CAP_NET_ADMIN, root) or kernel support
};

constexpr int ToInt(ExitCode c) { return static_cast<int>(c); }

// Human name of an exit code, used in --json output ("error.kind").
const char* ExitCodeName(ExitCode c);

}  // namespace headshift
