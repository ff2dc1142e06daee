// SessionSelector: which TCP sessions of a proxy belong to a tenant — local (listen) ports, client
// prefixes (IPv4/IPv6; an IPv4 prefix also matches ::ffff:a.b.c.d peers of dual-stack sockets),
// or exact connections resolved through NAT (FlowTuple, see ConntrackResolver), and TCP states.
// LISTEN sockets are never selected, whatever the state mask says.
//
// SessionMatcher is the compiled, exact userspace check every dumped socket passes through; the
// kernel bytecode (Filter()) is only a pre-filter.
//
// Thread-safety: values; a SessionMatcher is immutable after construction and may be shared.
#pragma once

#include <cstdint>
#include <set>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "common/status.h"
#include "dataplane/cidr.h"
#include "dataplane/diag_socket.h"
#include "dataplane/inet_diag_filter.h"
#include "dataplane/tcp_state.h"

namespace headshift {

struct SessionSelector {
  std::vector<uint16_t> ports;   // the proxy's local ports (required)
  std::vector<Cidr> clients;     // remote prefixes
  std::vector<FlowTuple> flows;  // exact connections as the proxy sees them (NAT-resolved)
  bool all_clients = false;      // every client on the ports (listing only; Validate(kill) refuses)
  uint32_t states = kLiveTcpStates;

  // BadInput naming the problem: no port; no client/flow (unless all_clients and !for_kill);
  // states empty or including LISTEN.
  Status Validate(bool for_kill) const;

  // The kernel pre-filter for this selection.
  InetDiagFilter Filter() const;
  // "ports 443 clients 10.0.0.0/8" for logs and messages.
  std::string Describe() const;
};

class SessionMatcher {
 public:
  explicit SessionMatcher(const SessionSelector& selector);
  bool Matches(const DiagSocket& socket) const;

 private:
  struct AddrHash {
    size_t operator()(const IpAddress& a) const;
  };
  uint32_t states_;
  std::set<uint16_t> ports_;
  bool all_clients_;
  std::unordered_set<IpAddress, AddrHash> hosts_;  // /32 and /128 clients: one lookup
  std::vector<Cidr> prefixes_;                     // shorter prefixes: scanned
  std::set<FlowTuple> flows_;                      // Normalized()
};

// Parses "443", "80,443" (and repeated values): each 1..65535. BadInput naming the value.
StatusOr<std::vector<uint16_t>> ParsePorts(const std::vector<std::string>& texts);

}  // namespace headshift
