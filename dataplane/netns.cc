#include "dataplane/netns.h"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <linux/nsfs.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <thread>
#include <unistd.h>

namespace headshift {

StatusOr<Netns> Netns::Open(std::string_view path_or_name) {
  Netns ns;
  ns.spec_ = std::string(path_or_name);
  const std::string& v = ns.spec_;
  if (v.empty()) {
    ns.path_ = "/proc/self/ns/net";
  } else if (v.find('/') == std::string::npos) {
    if (v == "." || v == "..") {
      return Status::BadInput("network namespace name '" + v + "' is not valid",
                              "give a name from `ip netns list` or a path like /proc/PID/ns/net");
    }
    ns.path_ = "/run/netns/" + v;
  } else {
    ns.path_ = v;
  }
  ns.fd_ = ::open(ns.path_.c_str(), O_RDONLY | O_CLOEXEC);
  if (ns.fd_ < 0) {
    int err = errno;
    // Root is refused only where no privilege helps (e.g. a path below an nsfs file): a bad value.
    if ((err == EACCES || err == EPERM) && ::geteuid() != 0) {
      return Status::NoPrivilege("cannot open network namespace '" + v + "' (" + ns.path_ + "): " + std::strerror(err),
                                 "run headshift as root");
    }
    return Status::BadInput("network namespace '" + v + "' " + (err == ENOENT ? "not found" : "cannot be opened") +
                                " (" + ns.path_ + ": " + std::strerror(err) + ")",
                            "create it (ip netns add NAME), or pass the proxy's namespace as /proc/PID/ns/net");
  }
  int type = ::ioctl(ns.fd_, NS_GET_NSTYPE);
  if (type != CLONE_NEWNET) {
    return Status::BadInput("'" + v + "' (" + ns.path_ + ") is not a network namespace",
                            "pass a name from `ip netns list` or a path like /proc/PID/ns/net");
  }
  struct stat st {};
  if (::fstat(ns.fd_, &st) == 0) ns.inode_ = st.st_ino;
  return ns;
}

Netns::Netns(Netns&& o) noexcept : fd_(o.fd_), spec_(std::move(o.spec_)), path_(std::move(o.path_)), inode_(o.inode_) {
  o.fd_ = -1;
}

Netns& Netns::operator=(Netns&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = o.fd_;
    spec_ = std::move(o.spec_);
    path_ = std::move(o.path_);
    inode_ = o.inode_;
    o.fd_ = -1;
  }
  return *this;
}

Netns::~Netns() {
  if (fd_ >= 0) ::close(fd_);
}

std::string Netns::Describe() const {
  if (spec_.empty()) return "this process's netns";
  if (spec_ == path_) return "netns " + path_;
  return "netns " + spec_ + " (" + path_ + ")";
}

Status Netns::Run(const std::function<Status()>& fn) const {
  if (fd_ < 0) return Status::Failed("network namespace handle is not open");
  Status result;
  // setns() changes only the calling thread; this thread exists for that and ends afterwards.
  std::thread worker([&] {
    // The process's own namespace needs no setns() (which would need CAP_SYS_ADMIN): a new thread
    // starts in its creator's namespace, and headshift threads never leave the process's own.
    if (!spec_.empty() && ::setns(fd_, CLONE_NEWNET) != 0) {
      int err = errno;
      if (err == EPERM) {
        result = Status::NoPrivilege("cannot enter " + Describe() + ": " + std::strerror(err),
                                     "run headshift as root (entering a namespace needs CAP_SYS_ADMIN)");
      } else {
        result = Status::Failed("cannot enter " + Describe() + ": " + std::strerror(err));
      }
      return;
    }
    result = fn();
  });
  worker.join();
  return result;
}

Status InNetns(std::string_view path_or_name, const std::function<Status()>& fn) {
  auto ns = Netns::Open(path_or_name);
  if (!ns.ok()) return ns.status();
  return ns->Run(fn);
}

}  // namespace headshift
