#include "proxycfg/directory_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <thread>

namespace headshift {

StatusOr<DirectoryLock> DirectoryLock::Acquire(const std::string& dir, int64_t timeout_ms) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) {
    return Status::Failed("cannot open directory " + dir + ": " + std::strerror(errno),
                          "create it, or fix the path in the config");
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    if (errno != EWOULDBLOCK && errno != EINTR) {
      int e = errno;
      ::close(fd);
      return Status::Failed("cannot lock directory " + dir + ": " + std::strerror(e));
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      ::close(fd);
      return Status::Failed("directory " + dir + " is locked by another headshift process",
                            "wait for the other `headshift` to finish, then retry");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return DirectoryLock(fd);
}

DirectoryLock& DirectoryLock::operator=(DirectoryLock&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = o.fd_;
    o.fd_ = -1;
  }
  return *this;
}

DirectoryLock::~DirectoryLock() {
  if (fd_ >= 0) ::close(fd_);  // closing the last descriptor releases the flock
}

Status CheckDirectoryWritable(const std::string& dir, const std::string& what) {
  struct stat st{};
  if (::stat(dir.c_str(), &st) != 0) {
    return Status::Failed(what + " " + dir + " does not exist: " + std::strerror(errno),
                          "create it, or fix the path in the config");
  }
  if (!S_ISDIR(st.st_mode)) return Status::Failed(what + " " + dir + " is not a directory");
  if (::access(dir.c_str(), W_OK | X_OK) != 0) {
    return Status::Failed(what + " " + dir + " is not writable: " + std::strerror(errno),
                          "headshift replaces files there by rename; make the directory writable (and not a "
                          "read-only mount) for the user running headshift");
  }
  return Status::Ok();
}

std::string DirName(const std::string& path) {
  size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

}  // namespace headshift
