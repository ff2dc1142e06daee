// DirectoryLock: an exclusive flock(2) on a directory, held while headshift reads, decides and
// writes the route files in it, so two headshift processes never interleave their edits. Locking
// the directory itself (not a lock file) keeps the directory listing untouched, which matters in
// a Traefik provider directory where every new file triggers a reload.
//
// Thread-safety: a DirectoryLock is owned by one thread; it is released on destruction.
#pragma once

#include <cstdint>
#include <string>

#include "common/status.h"

namespace headshift {

class DirectoryLock {
 public:
  // Waits up to `timeout_ms` for the lock. Failed if the directory cannot be opened or stays
  // locked by another process.
  static StatusOr<DirectoryLock> Acquire(const std::string& dir, int64_t timeout_ms);

  DirectoryLock() = default;
  DirectoryLock(DirectoryLock&& o) noexcept : fd_(o.fd_) { o.fd_ = -1; }
  DirectoryLock& operator=(DirectoryLock&& o) noexcept;
  DirectoryLock(const DirectoryLock&) = delete;
  DirectoryLock& operator=(const DirectoryLock&) = delete;
  ~DirectoryLock();

 private:
  explicit DirectoryLock(int fd) : fd_(fd) {}
  int fd_ = -1;
};

// OK if `dir` is a directory this process can create files in (access(2) also reports a
// read-only mount, even for root). Failed naming the directory, the reason and `what` it is for.
Status CheckDirectoryWritable(const std::string& dir, const std::string& what);

// The directory part of a path ("." if none).
std::string DirName(const std::string& path);

}  // namespace headshift
