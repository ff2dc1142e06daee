// HaproxyCommand: sends one line to an HAProxy runtime API socket (`stats socket … level admin`) and
// returns the reply. The lab uses it to know HAProxy is up; tests use it to change a map entry "by
// hand" (what an operator would do with socat), independently of headshift's proxycfg module.
#pragma once

#include <string>

#include "common/status.h"

namespace headshift::sandbox {

StatusOr<std::string> HaproxyCommand(const std::string& socket_path, const std::string& command,
                                     int timeout_ms = 2000);

}  // namespace headshift::sandbox
