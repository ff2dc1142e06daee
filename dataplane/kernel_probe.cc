#include "dataplane/kernel_probe.h"

#include <arpa/inet.h>
#include <cerrno>
#include <cstring>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <thread>
#include <unistd.h>
#include <vector>

#include "dataplane/sock_diag.h"
#include "dataplane/tcp_state.h"

namespace headshift {
namespace {

struct Fd {
  int fd = -1;
  explicit Fd(int f) : fd(f) {}
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

Status Errno(const std::string& what) { return Status::Failed(what + ": " + std::strerror(errno)); }

Status BringUpLoopback() {
  Fd s(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  ifreq ifr{};
  std::strncpy(ifr.ifr_name, "lo", IFNAMSIZ - 1);
  if (::ioctl(s.fd, SIOCGIFFLAGS, &ifr) != 0) return Errno("SIOCGIFFLAGS lo");
  ifr.ifr_flags |= IFF_UP;
  if (::ioctl(s.fd, SIOCSIFFLAGS, &ifr) != 0) return Errno("SIOCSIFFLAGS lo");
  return Status::Ok();
}

Status ProbeInThisNetns() {
  HS_RETURN_IF_ERROR(BringUpLoopback());
  Fd lst(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(lst.fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(lst.fd, 4) != 0) {
    return Errno("probe listener");
  }
  socklen_t len = sizeof a;
  ::getsockname(lst.fd, reinterpret_cast<sockaddr*>(&a), &len);
  Fd cli(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (::connect(cli.fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) return Errno("probe connect");
  Fd srv(::accept4(lst.fd, nullptr, nullptr, SOCK_CLOEXEC));
  if (srv.fd < 0) return Errno("probe accept");
  sockaddr_in ca{};
  len = sizeof ca;
  ::getsockname(cli.fd, reinterpret_cast<sockaddr*>(&ca), &len);

  auto diag = SockDiag::Open();
  if (!diag.ok()) return diag.status();
  // Find the server side of the probe connection: local port = listener port, remote = client.
  SockDiag::DumpRequest req;
  req.family = AF_INET;
  req.states = TcpStateBit(kTcpEstablished);
  req.local_port = ntohs(a.sin_port);
  std::vector<DiagSocket> found;
  HS_RETURN_IF_ERROR((*diag)->Dump(req, [&](const DiagSocket& s) {
    if (s.id.idiag_sport == a.sin_port && s.id.idiag_dport == ca.sin_port) found.push_back(s);
  }));
  if (found.size() != 1) return Status::Failed("probe connection not found in the sock_diag dump");
  auto errs = (*diag)->DestroyBatch(found);  // exact id including the cookie
  if (!errs.ok()) return errs.status();
  int err = (*errs)[0];
  HS_RETURN_IF_ERROR(DestroyPrivilegeStatus(err));
  if (err != 0) return Status::Failed(std::string("SOCK_DESTROY failed: ") + std::strerror(err));
  char c;
  ssize_t r = ::recv(cli.fd, &c, 1, 0);
  if (r < 0 && errno == ECONNRESET) return Status::Ok();
  return Status::Failed("SOCK_DESTROY was accepted but the probe client saw no reset");
}

}  // namespace

Status ProbeSockDestroy() {
  Status result;
  // A dedicated thread: unshare(CLONE_NEWNET) changes only the calling thread's namespace, so the
  // process's main thread never leaves its own namespace.
  std::thread t([&result] {
    if (::unshare(CLONE_NEWNET) != 0) {
      result = Status::NoPrivilege(std::string("cannot create a probe network namespace: ") + std::strerror(errno),
                                   "run headshift as root (needs CAP_SYS_ADMIN and CAP_NET_ADMIN)");
      return;
    }
    result = ProbeInThisNetns();
  });
  t.join();
  return result;
}

}  // namespace headshift
