// WriteFileAtomically: replace `path` so readers see either the old or the new content, never a
// partial file. Writes a new `<dir>/.<name>.XXXXXX.tmp` (random, created with O_EXCL, so nothing
// planted in the directory is followed or reused; a name no YAML/map watcher picks up), fsyncs it,
// sets `mode`, renames it over `path` (a symlink at `path` is replaced, not followed), then fsyncs
// the directory so the rename survives a crash. The file is owned by the calling user.
#pragma once

#include <string>
#include <sys/types.h>

#include "common/status.h"

namespace headshift {

Status WriteFileAtomically(const std::string& path, const std::string& content, mode_t mode = 0644);
// Reads a whole file. Failed if it cannot be read.
StatusOr<std::string> ReadFile(const std::string& path);

}  // namespace headshift
