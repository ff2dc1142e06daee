// InetDiagFilter: builds the in-kernel inet_diag bytecode (INET_DIAG_REQ_BYTECODE) that narrows a
// sock_diag dump to a session selection, so the kernel does not copy every socket of a busy proxy to
// userspace. The filter is only a pre-filter: the caller always re-checks each dumped socket exactly
// (SessionSelector::Matches), so a program that had to be simplified to fit merely returns more.
//
// Program shape: (local port == p1 OR p2 ...) AND (remote in prefix1 OR prefix2 OR endpoint1 ...).
// Every op's `yes` steps to the next op and all control flow uses forward `no` jumps, because the
// kernel's verifier (inet_diag_bc_audit) walks the program along `yes` steps and accepts a `no`
// target only on that walk. Port equality is S_GE+S_LE (S_EQ only exists on newer kernels).
// Limits: `no` is a u16 and so is the attribute length, so a program holds at most kMaxBytes; past
// that the remote conditions are dropped (ports kept), then the ports (no program).
//
// Thread-safety: not thread-safe; build on one thread, then use the bytes anywhere.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "dataplane/cidr.h"
#include "dataplane/ip_address.h"

namespace headshift {

class InetDiagFilter {
 public:
  // Largest program: 65535 (u16 nla_len) minus the 4-byte attribute header, rounded down to 4.
  static constexpr size_t kMaxBytes = 65528;

  // Conditions of the same kind are ORed; the two kinds (ports, remotes) are ANDed.
  void AddLocalPort(uint16_t port) { ports_.push_back(port); }
  void AddRemotePrefix(const Cidr& prefix) { prefixes_.push_back(prefix); }
  void AddRemoteEndpoint(const InetEndpoint& ep) { endpoints_.push_back(ep); }

  // False when remote conditions exist but none can match a socket of `family` (AF_INET sockets
  // never carry IPv6 peers), so a dump of that family can be skipped.
  bool CanMatch(int family) const;

  // The bytecode for a dump of `family` (AF_INET, AF_INET6, or AF_UNSPEC for a dump of both);
  // empty means "no filter". An IPv4 remote condition is emitted as an AF_INET hostcond in every
  // family: the kernel matches it against v4-mapped peers of AF_INET6 sockets too, and an AF_INET6
  // hostcond never matches an AF_INET socket, so the AF_INET6/AF_UNSPEC program serves both.
  std::vector<uint8_t> Build(int family, size_t max_bytes = kMaxBytes) const;

 private:
  std::vector<uint16_t> ports_;
  std::vector<Cidr> prefixes_;
  std::vector<InetEndpoint> endpoints_;
};

}  // namespace headshift
