// What `headshift --version` reports: the release version (CMake's project version) and the git revision
// of the source tree it was built from. Both are fixed at build time (cmake/Revision.cmake generates the
// definitions); the revision is "unknown" for a build from a tree without .git (a release tarball).
// Thread-safety: both return pointers to static strings.
#pragma once

namespace headshift {

// e.g. "0.1.0".
const char* BuildVersion();
// e.g. "f33a329c0a1b", "f33a329c0a1b-dirty" (tracked files differed from HEAD), or "unknown".
const char* BuildRevision();

}  // namespace headshift
