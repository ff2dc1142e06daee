#include "dataplane/kernel_probe.h"

#include <arpa/inet.h>
#include <cerrno>
#include <cstring>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <thread>
#include <unistd.h>

#include <libmnl/libmnl.h>

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

  mnl_socket* nl = mnl_socket_open(NETLINK_SOCK_DIAG);
  if (!nl) return Errno("netlink sock_diag socket");
  struct Closer {
    mnl_socket* s;
    ~Closer() { mnl_socket_close(s); }
  } closer{nl};
  if (mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0) return Errno("netlink bind");

  // Dump established TCP/IPv4 sockets and find the server side of the probe connection.
  char buf[MNL_SOCKET_BUFFER_SIZE];
  nlmsghdr* nlh = mnl_nlmsg_put_header(buf);
  nlh->nlmsg_type = SOCK_DIAG_BY_FAMILY;
  nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
  nlh->nlmsg_seq = 1;
  auto* req = static_cast<inet_diag_req_v2*>(mnl_nlmsg_put_extra_header(nlh, sizeof(inet_diag_req_v2)));
  req->sdiag_family = AF_INET;
  req->sdiag_protocol = IPPROTO_TCP;
  req->idiag_states = 1u << TCP_ESTABLISHED;
  if (mnl_socket_sendto(nl, nlh, nlh->nlmsg_len) < 0) return Errno("sock_diag dump");
  inet_diag_sockid target{};
  bool found = false;
  for (bool done = false; !done;) {
    ssize_t n = mnl_socket_recvfrom(nl, buf, sizeof buf);
    if (n <= 0) return Errno("sock_diag dump recv");
    for (auto* h = reinterpret_cast<nlmsghdr*>(buf); mnl_nlmsg_ok(h, static_cast<int>(n));
         h = mnl_nlmsg_next(h, reinterpret_cast<int*>(&n))) {
      if (h->nlmsg_type == NLMSG_DONE) { done = true; break; }
      if (h->nlmsg_type == NLMSG_ERROR) return Status::Failed("sock_diag dump error");
      auto* m = static_cast<inet_diag_msg*>(mnl_nlmsg_get_payload(h));
      // Server side: local port = listener port, remote port = client port.
      if (m->id.idiag_sport == a.sin_port && m->id.idiag_dport == ca.sin_port) {
        target = m->id;
        found = true;
      }
    }
  }
  if (!found) return Status::Failed("probe connection not found in the sock_diag dump");

  nlh = mnl_nlmsg_put_header(buf);
  nlh->nlmsg_type = SOCK_DESTROY;
  nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
  nlh->nlmsg_seq = 2;
  req = static_cast<inet_diag_req_v2*>(mnl_nlmsg_put_extra_header(nlh, sizeof(inet_diag_req_v2)));
  req->sdiag_family = AF_INET;
  req->sdiag_protocol = IPPROTO_TCP;
  req->idiag_states = ~0u;
  req->id = target;  // exact id including the cookie
  if (mnl_socket_sendto(nl, nlh, nlh->nlmsg_len) < 0) return Errno("SOCK_DESTROY send");
  ssize_t n = mnl_socket_recvfrom(nl, buf, sizeof buf);
  if (n <= 0) return Errno("SOCK_DESTROY ack");
  auto* h = reinterpret_cast<nlmsghdr*>(buf);
  if (h->nlmsg_type == NLMSG_ERROR) {
    int err = -static_cast<nlmsgerr*>(mnl_nlmsg_get_payload(h))->error;
    if (err == EOPNOTSUPP) {
      return Status::NoPrivilege("the kernel does not support SOCK_DESTROY",
                                 "use a kernel built with CONFIG_INET_DIAG_DESTROY=y");
    }
    if (err == EPERM) {
      return Status::NoPrivilege("SOCK_DESTROY refused: CAP_NET_ADMIN missing", "run headshift as root");
    }
    if (err != 0) return Status::Failed(std::string("SOCK_DESTROY failed: ") + std::strerror(err));
  }
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
