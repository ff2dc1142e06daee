// LabCommands: the few host commands and file writes the lab's builder and teardown share. Each
// failure is a Status naming the command line and its output, so the caller can surface it.
//
// Thread-safety: all functions are safe to call concurrently (no shared state).
#pragma once

#include <string>
#include <vector>

#include "common/status.h"

namespace headshift::sandbox::lab {

// Runs argv (10 s limit). Failed("`<cmd>` failed (exit N): <output>") unless it exits 0.
Status Run(const std::vector<std::string>& argv);
// `ip <args>` / `ip -n <ns> <args>`.
Status Ip(std::vector<std::string> args);
Status IpNs(const std::string& ns, std::vector<std::string> args);
// The first executable `dirs[i]/name`, or "" if none.
std::string FindProgram(const std::string& name, const std::vector<std::string>& dirs);
// `bytes` random bytes as lower-case hex (API keys, Noise keys of the stand-ins).
std::string RandomHex(size_t bytes);
// Writes `value` + "\n" to `path` atomically, mode 0600 (DSNs and API keys live only in such files).
Status WriteSecret(const std::string& path, const std::string& value);

}  // namespace headshift::sandbox::lab
