// WriteFileAtomically: replace `path` so readers see either the old or the new content, never a
// partial file. Writes `<dir>/.<name>.<pid>.tmp` (a name no YAML/map watcher picks up), fsyncs it,
// sets `mode`, renames it over `path`, then fsyncs the directory so the rename survives a crash.
#pragma once

#include <string>
#include <sys/types.h>

#include "common/status.h"

namespace headshift {

Status WriteFileAtomically(const std::string& path, const std::string& content, mode_t mode = 0644);
// Reads a whole file. Failed if it cannot be read.
StatusOr<std::string> ReadFile(const std::string& path);

}  // namespace headshift
