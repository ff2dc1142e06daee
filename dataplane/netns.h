// Netns: an open handle on a network namespace, and the one way the dataplane enters it: Run(fn)
// executes fn on a fresh, dedicated thread that has called setns(CLONE_NEWNET); the calling thread
// (and the process's main thread) never changes namespace. Sockets fn opens (netlink sock_diag,
// ctnetlink) stay bound to the namespace after the thread ends, so callers open them inside Run()
// and use them from any thread afterwards.
//
// A namespace is named like ip-netns(8) does: "" = the process's own namespace
// (/proc/self/ns/net), a name without '/' = /run/netns/NAME, anything else = a path such as
// /proc/PID/ns/net. Open() checks the file exists and is a network namespace.
//
// Thread-safety: a Netns may be shared; Run() may be called concurrently.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "common/status.h"

namespace headshift {

class Netns {
 public:
  // BadInput naming the value when the namespace does not exist or is not a network namespace;
  // NoPrivilege when it cannot be opened for lack of permission.
  static StatusOr<Netns> Open(std::string_view path_or_name);

  Netns() = default;
  Netns(Netns&& other) noexcept;
  Netns& operator=(Netns&& other) noexcept;
  Netns(const Netns&) = delete;
  Netns& operator=(const Netns&) = delete;
  ~Netns();

  const std::string& spec() const { return spec_; }  // as given ("" = own)
  const std::string& path() const { return path_; }  // the file opened
  uint64_t inode() const { return inode_; }          // the namespace's identity (nsfs inode)
  // "netns edge (/run/netns/edge)" or "this process's netns".
  std::string Describe() const;

  // Runs fn on a dedicated thread inside this namespace and returns its Status. NoPrivilege if
  // setns() is refused (needs CAP_SYS_ADMIN).
  Status Run(const std::function<Status()>& fn) const;

 private:
  int fd_ = -1;
  std::string spec_;
  std::string path_;
  uint64_t inode_ = 0;
};

// Convenience: Open(path_or_name) then Run(fn).
Status InNetns(std::string_view path_or_name, const std::function<Status()>& fn);

}  // namespace headshift
