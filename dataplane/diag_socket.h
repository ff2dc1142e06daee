// DiagSocket: one TCP socket as a sock_diag dump reports it. `id` is the kernel's exact identity of
// the socket — 4-tuple, bound interface and the socket cookie (unique for the boot) — and is what a
// SOCK_DESTROY must carry unchanged: with the cookie, a socket that closed and whose tuple now
// resolves to something else (the listener!) answers ESTALE/ENOENT instead of being killed.
//
// Thread-safety: a value.
#pragma once

#include <cstdint>
#include <linux/inet_diag.h>
#include <string>

#include "dataplane/ip_address.h"

namespace headshift {

struct DiagSocket {
  uint8_t family = 0;     // AF_INET or AF_INET6 (the socket's family: v4 on a [::] listener is AF_INET6)
  uint8_t state = 0;      // TcpState
  inet_diag_sockid id{};  // as dumped, including idiag_cookie and idiag_if

  InetEndpoint Local() const;   // the proxy's end (idiag_src/sport), as the kernel reports it
  InetEndpoint Remote() const;  // the peer (idiag_dst/dport)
  uint64_t Cookie() const;
  // The connection with both addresses Unmapped().
  FlowTuple Flow() const { return FlowTuple{Local(), Remote()}.Normalized(); }
  // "inet" or "inet6".
  const char* FamilyName() const;

  // Rebuilds a DiagSocket from its recorded parts (snapshots). `local`/`remote` in the socket's family.
  static DiagSocket FromParts(uint8_t family, uint8_t state, const InetEndpoint& local, const InetEndpoint& remote,
                              uint64_t cookie, uint32_t ifindex);
};

}  // namespace headshift
