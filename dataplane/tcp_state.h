// TCP states as sock_diag reports them (include/net/tcp_states.h numbering), their names, and the
// state sets a session selection may use. LISTEN is never selectable: resetting a listener would
// stop the proxy accepting anyone, so every parser and selector refuses it.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace headshift {

enum TcpState : uint8_t {
  kTcpEstablished = 1,
  kTcpSynSent = 2,
  kTcpSynRecv = 3,
  kTcpFinWait1 = 4,
  kTcpFinWait2 = 5,
  kTcpTimeWait = 6,
  kTcpClose = 7,
  kTcpCloseWait = 8,
  kTcpLastAck = 9,
  kTcpListen = 10,
  kTcpClosing = 11,
  kTcpNewSynRecv = 12,
};

constexpr uint32_t TcpStateBit(uint8_t state) { return 1u << state; }

// The states that hold a live connection (the default selection): a peer that would notice a
// reset. TIME_WAIT and CLOSE carry no connection; LISTEN is a listener.
constexpr uint32_t kLiveTcpStates =
    TcpStateBit(kTcpEstablished) | TcpStateBit(kTcpSynSent) | TcpStateBit(kTcpSynRecv) |
    TcpStateBit(kTcpFinWait1) | TcpStateBit(kTcpFinWait2) | TcpStateBit(kTcpCloseWait) |
    TcpStateBit(kTcpLastAck) | TcpStateBit(kTcpClosing) | TcpStateBit(kTcpNewSynRecv);

// Every state a selection may name (all but LISTEN).
constexpr uint32_t kSelectableTcpStates = kLiveTcpStates | TcpStateBit(kTcpTimeWait) | TcpStateBit(kTcpClose);

// "ESTABLISHED", "SYN_RECV", ... ("UNKNOWN(n)" otherwise).
std::string TcpStateName(uint8_t state);

// Parses names such as "established,fin-wait-1" (case-insensitive, '-' or '_'; also "live" for
// kLiveTcpStates). BadInput naming the value for unknown names and for "listen".
StatusOr<uint32_t> ParseTcpStates(const std::vector<std::string>& names);

}  // namespace headshift
