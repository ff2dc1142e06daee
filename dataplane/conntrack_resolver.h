// ConntrackResolver: maps tenant client addresses to the TCP connections a proxy behind source NAT
// actually holds. When clients reach the proxy through a load balancer (or a node) that does
// DNAT + masquerade, the proxy's sockets show the NAT address, not the client; the namespace doing
// the NAT keeps the mapping in its conntrack table. For every TCP entry whose original source is a
// tenant client and whose reply source port (the port the translated flow reaches) is a proxy port,
// the reply direction gives the proxy's view: local = reply source, remote = reply destination.
//
// The table is read with libnetfilter_conntrack (ctnetlink dump, CAP_NET_ADMIN) in the namespace
// the resolver was opened in. One NAT hop between the conntrack namespace and the proxy: a second
// translation after it is not followed.
//
// Thread-safety: not thread-safe; use from one thread at a time.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "common/status.h"
#include "dataplane/cidr.h"
#include "dataplane/ip_address.h"
#include "dataplane/netns.h"

struct nfct_handle;

namespace headshift {

struct NatFlow {
  InetEndpoint client;   // original source (the tenant's device)
  FlowTuple proxy_view;  // the connection as the proxy's socket sees it
};

class ConntrackResolver {
 public:
  // Opens a ctnetlink handle inside `ns` (Netns::Run).
  static StatusOr<std::unique_ptr<ConntrackResolver>> Open(const Netns& ns);
  ~ConntrackResolver();
  ConntrackResolver(const ConntrackResolver&) = delete;
  ConntrackResolver& operator=(const ConntrackResolver&) = delete;

  // TCP flows from `clients` to one of `proxy_ports`. NoPrivilege without CAP_NET_ADMIN.
  StatusOr<std::vector<NatFlow>> Resolve(const std::vector<Cidr>& clients, const std::vector<uint16_t>& proxy_ports);

 private:
  explicit ConntrackResolver(nfct_handle* h) : handle_(h) {}
  nfct_handle* handle_;
};

}  // namespace headshift
