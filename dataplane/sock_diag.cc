#include "dataplane/sock_diag.h"

#include <cerrno>
#include <cstring>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#include <libmnl/libmnl.h>

namespace headshift {
namespace {

Status NetlinkError(const std::string& what, int err) {
  return Status::Failed("sock_diag " + what + ": " + std::strerror(err));
}

// Opens one NETLINK_SOCK_DIAG socket in the current thread's netns.
StatusOr<mnl_socket*> OpenNetlink() {
  mnl_socket* nl = mnl_socket_open2(NETLINK_SOCK_DIAG, SOCK_CLOEXEC);
  if (!nl) return NetlinkError("socket", errno);
  if (mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0) {
    int err = errno;
    mnl_socket_close(nl);
    return NetlinkError("bind", err);
  }
  return nl;
}

struct DumpContext {
  const std::function<void(const DiagSocket&)>* on_socket;
};

int OnDumpMessage(const nlmsghdr* nlh, void* data) {
  auto* ctx = static_cast<DumpContext*>(data);
  if (mnl_nlmsg_get_payload_len(nlh) < sizeof(inet_diag_msg)) return MNL_CB_ERROR;
  const auto* m = static_cast<const inet_diag_msg*>(mnl_nlmsg_get_payload(nlh));
  DiagSocket s;
  s.family = m->idiag_family;
  s.state = m->idiag_state;
  s.id = m->id;
  (*ctx->on_socket)(s);
  return MNL_CB_OK;
}

}  // namespace

StatusOr<std::unique_ptr<SockDiag>> SockDiag::Open() {
  auto dump = OpenNetlink();
  if (!dump.ok()) return dump.status();
  auto destroy = OpenNetlink();
  if (!destroy.ok()) {
    mnl_socket_close(*dump);
    return destroy.status();
  }
  int fd = mnl_socket_get_fd(*destroy);
  // Answers of a whole batch must fit in the receive queue (each ack is its own skb, ~1 KiB of
  // truesize); overflowing it would drop answers. FORCE needs CAP_NET_ADMIN, which destroying needs
  // anyway; without it the default buffer still holds a batch of kDestroyBatch.
  int bytes = 4 << 20;
  if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &bytes, sizeof bytes) != 0) {
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &bytes, sizeof bytes);
  }
  // Acks carry only the request header, not the echoed request payload.
  int one = 1;
  setsockopt(fd, SOL_NETLINK, NETLINK_CAP_ACK, &one, sizeof one);
  // Dump replies: bigger skbs mean fewer recvmsg() calls on large tables.
  int dump_fd = mnl_socket_get_fd(*dump);
  bytes = 1 << 20;
  setsockopt(dump_fd, SOL_SOCKET, SO_RCVBUF, &bytes, sizeof bytes);
  return std::unique_ptr<SockDiag>(new SockDiag(*dump, *destroy));
}

SockDiag::~SockDiag() {
  mnl_socket_close(dump_);
  mnl_socket_close(destroy_);
}

Status SockDiag::Dump(const DumpRequest& request, const std::function<void(const DiagSocket&)>& on_socket) {
  size_t delivered = 0;
  if (request.family != AF_UNSPEC) return DumpOnce(request, false, on_socket, &delivered);
  Status st = DumpOnce(request, true, on_socket, &delivered);
  if (st.ok() || delivered > 0) return st;
  // A kernel without the TCPDIAG_GETSOCK compatibility request: one dump per family.
  for (uint8_t family : {AF_INET, AF_INET6}) {
    DumpRequest r = request;
    r.family = family;
    HS_RETURN_IF_ERROR(DumpOnce(r, false, on_socket, &delivered));
  }
  return Status::Ok();
}

Status SockDiag::DumpOnce(const DumpRequest& request, bool compat,
                          const std::function<void(const DiagSocket&)>& on_socket, size_t* delivered) {
  std::vector<char> buf(MNL_SOCKET_BUFFER_SIZE + request.bytecode.size() + 64);
  nlmsghdr* nlh = mnl_nlmsg_put_header(buf.data());
  nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
  nlh->nlmsg_seq = seq_++;
  if (compat) {
    // struct inet_diag_req: the kernel dumps it with family AF_UNSPEC (both) and protocol TCP.
    nlh->nlmsg_type = TCPDIAG_GETSOCK;
    auto* req = static_cast<inet_diag_req*>(mnl_nlmsg_put_extra_header(nlh, sizeof(inet_diag_req)));
    req->idiag_family = AF_UNSPEC;
    req->idiag_states = request.states;
    req->id.idiag_sport = htons(request.local_port);
  } else {
    nlh->nlmsg_type = SOCK_DIAG_BY_FAMILY;
    auto* req = static_cast<inet_diag_req_v2*>(mnl_nlmsg_put_extra_header(nlh, sizeof(inet_diag_req_v2)));
    req->sdiag_family = request.family;
    req->sdiag_protocol = IPPROTO_TCP;
    req->idiag_states = request.states;
    req->id.idiag_sport = htons(request.local_port);
  }
  if (!request.bytecode.empty()) {
    mnl_attr_put(nlh, INET_DIAG_REQ_BYTECODE, request.bytecode.size(), request.bytecode.data());
  }
  if (mnl_socket_sendto(dump_, nlh, nlh->nlmsg_len) < 0) return NetlinkError("dump request", errno);

  const uint32_t seq = nlh->nlmsg_seq;
  const uint32_t portid = mnl_socket_get_portid(dump_);
  std::vector<char> rx(1 << 20);
  size_t count = 0;
  std::function<void(const DiagSocket&)> counting = [&](const DiagSocket& s) {
    ++count;
    on_socket(s);
  };
  DumpContext ctx{&counting};
  while (true) {
    ssize_t n = mnl_socket_recvfrom(dump_, rx.data(), rx.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      *delivered += count;
      return NetlinkError("dump receive", errno);
    }
    int rc = mnl_cb_run(rx.data(), static_cast<size_t>(n), seq, portid, OnDumpMessage, &ctx);
    if (rc == MNL_CB_STOP) {
      *delivered += count;
      return Status::Ok();
    }
    if (rc == MNL_CB_ERROR) {
      int err = errno;
      *delivered += count;
      if (err == EINVAL && !request.bytecode.empty() && !compat) {
        return Status::Failed("the kernel rejected the inet_diag filter bytecode (EINVAL)",
                              "report this as a headshift bug, with the kernel version");
      }
      return NetlinkError(compat ? "dump (TCPDIAG_GETSOCK)" : "dump", err);
    }
  }
}

Status SockDiag::DestroyChunk(const DiagSocket* sockets, size_t n, int* errors) {
  // Requests: nlmsghdr + inet_diag_req_v2, 72 bytes each.
  constexpr size_t kReqSize = MNL_ALIGN(sizeof(nlmsghdr)) + MNL_ALIGN(sizeof(inet_diag_req_v2));
  std::vector<char> buf(kReqSize * n + 64);
  mnl_nlmsg_batch* batch = mnl_nlmsg_batch_start(buf.data(), buf.size());
  const uint32_t base = seq_;
  seq_ += static_cast<uint32_t>(n);
  for (size_t i = 0; i < n; ++i) {
    nlmsghdr* nlh = mnl_nlmsg_put_header(mnl_nlmsg_batch_current(batch));
    nlh->nlmsg_type = SOCK_DESTROY;
    nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
    nlh->nlmsg_seq = base + static_cast<uint32_t>(i);
    auto* req = static_cast<inet_diag_req_v2*>(mnl_nlmsg_put_extra_header(nlh, sizeof(inet_diag_req_v2)));
    req->sdiag_family = sockets[i].family;
    req->sdiag_protocol = IPPROTO_TCP;
    req->idiag_states = ~0u;  // not used by the exact lookup
    req->id = sockets[i].id;  // exact id: tuple, interface and cookie, as dumped
    mnl_nlmsg_batch_next(batch);
    errors[i] = ETIMEDOUT;  // until an answer says otherwise
  }
  size_t len = mnl_nlmsg_batch_size(batch);
  mnl_nlmsg_batch_stop(batch);
  if (mnl_socket_sendto(destroy_, buf.data(), len) < 0) return NetlinkError("destroy request", errno);

  // Drain the answers: one datagram per ack, many per recvmmsg().
  constexpr size_t kSlot = 256;  // an ack with NETLINK_CAP_ACK is 36 bytes
  std::vector<char> rx(kSlot * n);
  std::vector<iovec> iov(n);
  std::vector<mmsghdr> msgs(n);
  size_t answered = 0;
  const int fd = mnl_socket_get_fd(destroy_);
  while (answered < n) {
    for (size_t i = 0; i < n; ++i) {
      iov[i] = {rx.data() + i * kSlot, kSlot};
      msgs[i] = {};
      msgs[i].msg_hdr.msg_iov = &iov[i];
      msgs[i].msg_hdr.msg_iovlen = 1;
    }
    int got = recvmmsg(fd, msgs.data(), static_cast<unsigned>(n - answered), MSG_DONTWAIT, nullptr);
    if (got < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) {
        // Answers are normally queued before sendmsg() returns; wait briefly for stragglers.
        pollfd p{fd, POLLIN, 0};
        int pr = poll(&p, 1, 2000);
        if (pr == 0) break;  // the rest stay ETIMEDOUT
        continue;
      }
      if (errno == ENOBUFS) break;  // answers were dropped; the caller's re-dump decides
      return NetlinkError("destroy answers", errno);
    }
    for (int m = 0; m < got; ++m) {
      int left = static_cast<int>(msgs[m].msg_len);
      for (auto* h = reinterpret_cast<const nlmsghdr*>(iov[m].iov_base); mnl_nlmsg_ok(h, left);
           h = mnl_nlmsg_next(h, &left)) {
        if (h->nlmsg_type != NLMSG_ERROR || mnl_nlmsg_get_payload_len(h) < sizeof(nlmsgerr)) continue;
        uint32_t idx = h->nlmsg_seq - base;
        if (idx >= n) continue;  // a late answer to an earlier batch
        const auto* e = static_cast<const nlmsgerr*>(mnl_nlmsg_get_payload(h));
        errors[idx] = -e->error;
        ++answered;
      }
    }
  }
  return Status::Ok();
}

StatusOr<std::vector<int>> SockDiag::DestroyBatch(const std::vector<DiagSocket>& sockets) {
  std::vector<int> errors(sockets.size(), 0);
  for (size_t at = 0; at < sockets.size(); at += kDestroyBatch) {
    size_t n = std::min(kDestroyBatch, sockets.size() - at);
    HS_RETURN_IF_ERROR(DestroyChunk(sockets.data() + at, n, errors.data() + at));
  }
  return errors;
}

Status SockDiag::CheckDestroySupported() {
  DiagSocket nothing;  // 0.0.0.0:0 <-> 0.0.0.0:0, cookie 0: no socket has port 0 or cookie 0
  nothing.family = AF_INET;
  auto errs = DestroyBatch({nothing});
  if (!errs.ok()) return errs.status();
  int err = (*errs)[0];
  if (err == ENOENT || err == ESTALE) return Status::Ok();
  if (err == EOPNOTSUPP) return DestroyPrivilegeStatus(err);
  if (err == 0) return Status::Failed("SOCK_DESTROY probe: the kernel reported destroying a socket that cannot exist");
  return Status::Failed(std::string("SOCK_DESTROY probe failed: ") + std::strerror(err));
}

Status DestroyPrivilegeStatus(int err) {
  if (err == EPERM || err == EACCES) {
    return Status::NoPrivilege("SOCK_DESTROY refused: CAP_NET_ADMIN missing over the target network namespace",
                               "run headshift as root in the namespace's owning user namespace, or grant "
                               "cap_net_admin,cap_sys_admin");
  }
  if (err == EOPNOTSUPP) {
    return Status::NoPrivilege("this kernel does not support SOCK_DESTROY",
                               "use a kernel built with CONFIG_INET_DIAG_DESTROY=y (most distribution kernels are)");
  }
  return Status::Ok();
}

}  // namespace headshift
