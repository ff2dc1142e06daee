// SockDiag: the low-level sock_diag primitive — NETLINK_SOCK_DIAG sockets bound to the network
// namespace they were opened in (the kernel answers for the netns of the *requesting* netlink
// socket, so open it inside the target netns: Netns::Run): one for dumps and one or more destroy
// channels, so destroy answers never interleave with dump replies and destroys can run on several
// threads while a dump is being read.
//
//   Dump()     SOCK_DIAG_BY_FAMILY with NLM_F_DUMP for one family, TCP, a state mask, an optional
//              single local port (kernel pre-filter) and optional bytecode. Family AF_UNSPEC dumps
//              both families in one walk of the kernel's socket hash (which both families share,
//              and which is global: every dump walks every namespace's sockets) through the older
//              TCPDIAG_GETSOCK request, the only one that accepts AF_UNSPEC; if the kernel refuses
//              it, two per-family dumps are made instead.
//   Destroy()  SOCK_DESTROY for many sockets, each by its exact dumped id (cookie included),
//              pipelined: up to kDestroyBatch requests per sendmsg(). The requests carry no
//              NLM_F_ACK — the kernel answers only failures — and the batch ends with an
//              NLMSG_NOOP that does ask for an ack: the kernel handles a sock_diag request
//              synchronously inside sendmsg(), in order, so when that ack is read every failure
//              of the batch has been read before it, and a request without an answer succeeded.
//              This spares the kernel an ack skb per reset socket (a tenant's kill is ~10,000).
//
// Thread-safety: Dump() is called from one thread at a time; each destroy channel from one thread
// at a time; Dump() and destroys on distinct channels may run concurrently (any threads — the
// namespace binding is the socket's, not the thread's).
#pragma once

#include <cerrno>
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "common/status.h"
#include "dataplane/diag_socket.h"

struct mnl_socket;

namespace headshift {

class SockDiag {
 public:
  static constexpr size_t kDestroyBatch = 256;
  // Destroy()'s errno for a request whose answer the kernel dropped (the channel's receive queue
  // overflowed: ENOBUFS): the socket may or may not have been reset. No SOCK_DESTROY answers it.
  static constexpr int kAnswerLost = ETIMEDOUT;
  // Receive queue of a destroy channel: every failure of a batch must fit (one skb of under 1 KiB
  // truesize each), or answers are dropped.
  static constexpr int kAnswerQueueBytes = 4 << 20;

  struct DumpRequest {
    uint8_t family = 0;          // AF_INET, AF_INET6, or AF_UNSPEC (both, one walk)
    uint32_t states = 0;         // TcpStateBit mask
    uint16_t local_port = 0;     // non-zero: kernel pre-filter on the local port
    std::vector<uint8_t> bytecode;  // InetDiagFilter::Build(); empty = none
  };

  // Opens the dump socket and `destroy_channels` (>= 1) destroy sockets in the calling thread's
  // network namespace. `answer_queue_bytes` sizes each destroy channel's receive queue (tests
  // shrink it to make the kernel drop answers).
  static StatusOr<std::unique_ptr<SockDiag>> Open(size_t destroy_channels = 1,
                                                  int answer_queue_bytes = kAnswerQueueBytes);
  ~SockDiag();
  SockDiag(const SockDiag&) = delete;
  SockDiag& operator=(const SockDiag&) = delete;

  size_t destroy_channels() const { return channels_.size(); }

  // Calls on_socket for every TCP socket the kernel returns. Failed on a netlink error.
  Status Dump(const DumpRequest& request, const std::function<void(const DiagSocket&)>& on_socket);

  // Destroys sockets[0..n) through destroy channel `channel`, each by its exact id. errors[i] is 0
  // when sockets[i] was reset, otherwise the errno the kernel answered: ENOENT/ESTALE (gone, or the
  // tuple now names another socket, e.g. the listener — which is then left alone), EPERM (no
  // CAP_NET_ADMIN over that netns), EOPNOTSUPP (kernel without CONFIG_INET_DIAG_DESTROY, or a state
  // it cannot abort), ETIMEDOUT (the batch's answers were lost: its outcome is unknown and the
  // caller's re-dump decides: kAnswerLost). Failed only when the netlink socket itself fails.
  // REQUIRES: channel < destroy_channels().
  Status Destroy(const DiagSocket* sockets, size_t n, int* errors, size_t channel = 0);
  // Destroy() of a whole vector on channel 0.
  StatusOr<std::vector<int>> DestroyBatch(const std::vector<DiagSocket>& sockets);

  // Asks the kernel to destroy a socket that cannot exist (all-zero tuple, cookie 0): OK when it
  // answers "not found" (SOCK_DESTROY is supported); NoPrivilege when it answers EOPNOTSUPP.
  // Destroys nothing.
  Status CheckDestroySupported();

 private:
  struct Channel;

  SockDiag() = default;
  // One dump request; *delivered counts sockets passed to on_socket.
  Status DumpOnce(const DumpRequest& request, bool compat, const std::function<void(const DiagSocket&)>& on_socket,
                  size_t* delivered);
  static Status DestroyChunk(Channel& ch, const DiagSocket* sockets, size_t n, int* errors);

  mnl_socket* dump_ = nullptr;
  uint32_t dump_seq_ = 1;
  std::unique_ptr<char[]> dump_rx_;  // reused: fresh pages cost a fault each
  std::vector<std::unique_ptr<Channel>> channels_;
};

// Maps a SOCK_DESTROY errno that means "this host cannot destroy sockets" to its Status (with the
// fix): EPERM/EACCES → NoPrivilege (CAP_NET_ADMIN), EOPNOTSUPP → NoPrivilege (kernel). OK otherwise.
Status DestroyPrivilegeStatus(int err);

}  // namespace headshift
