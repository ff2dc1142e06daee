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

// A dump reply skb is at most 32 KiB (the kernel caps dump allocations there); the buffer is
// larger so that a future kernel's bigger skbs are still read whole.
constexpr size_t kDumpRxSize = 64 << 10;

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

// One destroy socket with its sequence numbers and reusable buffers.
struct SockDiag::Channel {
  // Requests: nlmsghdr + inet_diag_req_v2 (72 bytes) each, plus the closing NLMSG_NOOP.
  static constexpr size_t kReqSize = MNL_ALIGN(sizeof(nlmsghdr)) + MNL_ALIGN(sizeof(inet_diag_req_v2));
  // Answers: an error with NETLINK_CAP_ACK is 36 bytes; one datagram each.
  static constexpr size_t kSlot = 256;
  static constexpr size_t kSlots = 64;

  mnl_socket* nl = nullptr;
  uint32_t seq = 1;
  std::vector<char> tx = std::vector<char>(kReqSize * (kDestroyBatch + 1) + 64);
  std::vector<char> rx = std::vector<char>(kSlot * kSlots);

  ~Channel() {
    if (nl) mnl_socket_close(nl);
  }
};

StatusOr<std::unique_ptr<SockDiag>> SockDiag::Open(size_t destroy_channels, int answer_queue_bytes) {
  std::unique_ptr<SockDiag> d(new SockDiag());
  auto dump = OpenNetlink();
  if (!dump.ok()) return dump.status();
  d->dump_ = *dump;
  // Dump replies: a larger queue lets the kernel fill the next skb while this one is parsed.
  int bytes = 1 << 20;
  setsockopt(mnl_socket_get_fd(d->dump_), SOL_SOCKET, SO_RCVBUF, &bytes, sizeof bytes);
  d->dump_rx_.reset(new char[kDumpRxSize]);
  for (size_t i = 0; i < std::max<size_t>(destroy_channels, 1); ++i) {
    auto nl = OpenNetlink();
    if (!nl.ok()) return nl.status();
    auto ch = std::make_unique<Channel>();
    ch->nl = *nl;
    int fd = mnl_socket_get_fd(ch->nl);
    // The failures of a whole batch must fit in the receive queue (each answer is its own skb,
    // under 1 KiB of truesize), or answers would be dropped. FORCE needs CAP_NET_ADMIN, which
    // destroying needs anyway; without it SO_RCVBUF still gets twice rmem_max (>= 416 KiB by
    // default), enough for kDestroyBatch refusals.
    int rcv = answer_queue_bytes;
    if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcv, sizeof rcv) != 0) {
      setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof rcv);
    }
    // Answers carry only the request header, not the echoed request payload.
    int one = 1;
    setsockopt(fd, SOL_NETLINK, NETLINK_CAP_ACK, &one, sizeof one);
    d->channels_.push_back(std::move(ch));
  }
  return d;
}

SockDiag::~SockDiag() {
  if (dump_) mnl_socket_close(dump_);
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
  nlh->nlmsg_seq = dump_seq_++;
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
  size_t count = 0;
  std::function<void(const DiagSocket&)> counting = [&](const DiagSocket& s) {
    ++count;
    on_socket(s);
  };
  DumpContext ctx{&counting};
  while (true) {
    ssize_t n = mnl_socket_recvfrom(dump_, dump_rx_.get(), kDumpRxSize);
    if (n < 0) {
      if (errno == EINTR) continue;
      *delivered += count;
      return NetlinkError("dump receive", errno);
    }
    int rc = mnl_cb_run(dump_rx_.get(), static_cast<size_t>(n), seq, portid, OnDumpMessage, &ctx);
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

Status SockDiag::DestroyChunk(Channel& ch, const DiagSocket* sockets, size_t n, int* errors) {
  mnl_nlmsg_batch* batch = mnl_nlmsg_batch_start(ch.tx.data(), ch.tx.size());
  const uint32_t base = ch.seq;
  ch.seq += static_cast<uint32_t>(n + 1);
  for (size_t i = 0; i < n; ++i) {
    nlmsghdr* nlh = mnl_nlmsg_put_header(mnl_nlmsg_batch_current(batch));
    nlh->nlmsg_type = SOCK_DESTROY;
    nlh->nlmsg_flags = NLM_F_REQUEST;  // no NLM_F_ACK: only failures are answered
    nlh->nlmsg_seq = base + static_cast<uint32_t>(i);
    auto* req = static_cast<inet_diag_req_v2*>(mnl_nlmsg_put_extra_header(nlh, sizeof(inet_diag_req_v2)));
    req->sdiag_family = sockets[i].family;
    req->sdiag_protocol = IPPROTO_TCP;
    req->idiag_states = ~0u;  // not used by the exact lookup
    req->id = sockets[i].id;  // exact id: tuple, interface and cookie, as dumped
    mnl_nlmsg_batch_next(batch);
    errors[i] = 0;  // until a failure is answered
  }
  // The closing barrier: acknowledged after every request before it was handled.
  nlmsghdr* noop = mnl_nlmsg_put_header(mnl_nlmsg_batch_current(batch));
  noop->nlmsg_type = NLMSG_NOOP;
  noop->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
  noop->nlmsg_seq = base + static_cast<uint32_t>(n);
  mnl_nlmsg_batch_next(batch);
  size_t len = mnl_nlmsg_batch_size(batch);
  mnl_nlmsg_batch_stop(batch);
  if (mnl_socket_sendto(ch.nl, ch.tx.data(), len) < 0) return NetlinkError("destroy request", errno);

  constexpr size_t kSlots = Channel::kSlots;
  iovec iov[kSlots];
  mmsghdr msgs[kSlots];
  const int fd = mnl_socket_get_fd(ch.nl);
  bool lost = false;
  for (bool done = false; !done;) {
    for (size_t i = 0; i < kSlots; ++i) {
      iov[i] = {ch.rx.data() + i * Channel::kSlot, Channel::kSlot};
      msgs[i] = {};
      msgs[i].msg_hdr.msg_iov = &iov[i];
      msgs[i].msg_hdr.msg_iovlen = 1;
    }
    int got = recvmmsg(fd, msgs, kSlots, MSG_DONTWAIT, nullptr);
    if (got < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) {
        if (lost) break;  // the barrier itself was dropped
        // Answers are queued before sendmsg() returns; wait briefly in case that ever changes.
        pollfd p{fd, POLLIN, 0};
        if (poll(&p, 1, 2000) == 0) {
          lost = true;
          break;
        }
        continue;
      }
      if (errno == ENOBUFS) {  // answers were dropped: this batch's outcome is unknown
        lost = true;
        continue;  // read what is still queued, up to the barrier
      }
      return NetlinkError("destroy answers", errno);
    }
    for (int m = 0; m < got; ++m) {
      int left = static_cast<int>(msgs[m].msg_len);
      for (auto* h = reinterpret_cast<const nlmsghdr*>(iov[m].iov_base); mnl_nlmsg_ok(h, left);
           h = mnl_nlmsg_next(h, &left)) {
        if (h->nlmsg_type != NLMSG_ERROR || mnl_nlmsg_get_payload_len(h) < sizeof(nlmsgerr)) continue;
        uint32_t idx = h->nlmsg_seq - base;
        if (idx > n) continue;  // a late answer to an earlier batch
        if (idx == n) {
          done = true;  // the barrier: every failure of this batch came before it
          continue;
        }
        const auto* e = static_cast<const nlmsgerr*>(mnl_nlmsg_get_payload(h));
        errors[idx] = -e->error;
      }
    }
  }
  if (lost) {
    // Which of the unanswered requests failed is unknown; the caller's re-dump shows what is left.
    for (size_t i = 0; i < n; ++i) {
      if (errors[i] == 0) errors[i] = kAnswerLost;
    }
  }
  return Status::Ok();
}

Status SockDiag::Destroy(const DiagSocket* sockets, size_t n, int* errors, size_t channel) {
  Channel& ch = *channels_.at(channel);
  for (size_t at = 0; at < n; at += kDestroyBatch) {
    HS_RETURN_IF_ERROR(DestroyChunk(ch, sockets + at, std::min(kDestroyBatch, n - at), errors + at));
  }
  return Status::Ok();
}

StatusOr<std::vector<int>> SockDiag::DestroyBatch(const std::vector<DiagSocket>& sockets) {
  std::vector<int> errors(sockets.size(), 0);
  HS_RETURN_IF_ERROR(Destroy(sockets.data(), sockets.size(), errors.data(), 0));
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
