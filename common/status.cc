#include "common/status.h"

namespace headshift {

const char* ExitCodeName(ExitCode c) {
  switch (c) {
    case ExitCode::kOk: return "ok";
    case ExitCode::kFailed: return "failed";
    case ExitCode::kBadInput: return "bad_input";
    case ExitCode::kRefused: return "refused";
    case ExitCode::kNeedsOperator: return "needs_operator";
    case ExitCode::kNoPrivilege: return "no_privilege";
  }
  return "unknown";
}

std::string Status::ToString() const {
  if (ok()) return "OK";
  if (hint_.empty()) return message_;
  return message_ + " (fix: " + hint_ + ")";
}

}  // namespace headshift
