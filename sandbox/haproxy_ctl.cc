#include "sandbox/haproxy_ctl.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace headshift::sandbox {

StatusOr<std::string> HaproxyCommand(const std::string& socket_path, const std::string& command, int timeout_ms) {
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  if (socket_path.size() >= sizeof sa.sun_path) return Status::BadInput("socket path too long: " + socket_path);
  std::strncpy(sa.sun_path, socket_path.c_str(), sizeof sa.sun_path - 1);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Status::Failed(std::string("socket: ") + std::strerror(errno));
  if (connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
    std::string err = std::strerror(errno);
    close(fd);
    return Status::Failed("cannot connect to HAProxy runtime socket " + socket_path + ": " + err);
  }
  std::string line = command + "\n";
  if (send(fd, line.data(), line.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(line.size())) {
    close(fd);
    return Status::Failed("cannot send to " + socket_path);
  }
  // Non-interactive mode: HAProxy answers and closes.
  std::string reply;
  char buf[4096];
  for (;;) {
    pollfd p{fd, POLLIN, 0};
    int r = poll(&p, 1, timeout_ms);
    if (r <= 0) {
      close(fd);
      return Status::Failed("HAProxy did not answer '" + command + "' within " + std::to_string(timeout_ms) + " ms");
    }
    ssize_t n = read(fd, buf, sizeof buf);
    if (n <= 0) break;
    reply.append(buf, static_cast<size_t>(n));
  }
  close(fd);
  return reply;
}

}  // namespace headshift::sandbox
