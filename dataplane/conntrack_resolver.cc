#include "dataplane/conntrack_resolver.h"

#include <algorithm>
#include <arpa/inet.h>
#include <cerrno>
#include <cstring>
#include <netinet/in.h>

#include <libnetfilter_conntrack/libnetfilter_conntrack.h>

namespace headshift {
namespace {

struct ResolveContext {
  const std::vector<Cidr>* clients;
  const std::vector<uint16_t>* ports;
  std::vector<NatFlow>* out;
};

IpAddress Addr(const nf_conntrack* ct, uint8_t l3, nf_conntrack_attr v4, nf_conntrack_attr v6) {
  return l3 == AF_INET ? IpAddress::V4(nfct_get_attr(ct, v4)) : IpAddress::V6(nfct_get_attr(ct, v6));
}

int OnEntry(enum nf_conntrack_msg_type, nf_conntrack* ct, void* data) {
  auto* ctx = static_cast<ResolveContext*>(data);
  if (!nfct_attr_is_set(ct, ATTR_ORIG_L4PROTO) || nfct_get_attr_u8(ct, ATTR_ORIG_L4PROTO) != IPPROTO_TCP) {
    return NFCT_CB_CONTINUE;
  }
  uint8_t l3 = nfct_get_attr_u8(ct, ATTR_ORIG_L3PROTO);
  if (l3 != AF_INET && l3 != AF_INET6) return NFCT_CB_CONTINUE;
  for (auto a : {ATTR_ORIG_PORT_SRC, ATTR_REPL_PORT_SRC, ATTR_REPL_PORT_DST}) {
    if (!nfct_attr_is_set(ct, a)) return NFCT_CB_CONTINUE;
  }
  IpAddress client = Addr(ct, l3, ATTR_ORIG_IPV4_SRC, ATTR_ORIG_IPV6_SRC);
  bool tenant = std::any_of(ctx->clients->begin(), ctx->clients->end(), [&](const Cidr& c) { return c.Contains(client); });
  if (!tenant) return NFCT_CB_CONTINUE;
  uint16_t proxy_port = ntohs(nfct_get_attr_u16(ct, ATTR_REPL_PORT_SRC));
  if (std::find(ctx->ports->begin(), ctx->ports->end(), proxy_port) == ctx->ports->end()) return NFCT_CB_CONTINUE;
  NatFlow f;
  f.client = {client, ntohs(nfct_get_attr_u16(ct, ATTR_ORIG_PORT_SRC))};
  f.proxy_view.local = {Addr(ct, l3, ATTR_REPL_IPV4_SRC, ATTR_REPL_IPV6_SRC), proxy_port};
  f.proxy_view.remote = {Addr(ct, l3, ATTR_REPL_IPV4_DST, ATTR_REPL_IPV6_DST),
                         ntohs(nfct_get_attr_u16(ct, ATTR_REPL_PORT_DST))};
  ctx->out->push_back(f);
  return NFCT_CB_CONTINUE;
}

}  // namespace

StatusOr<std::unique_ptr<ConntrackResolver>> ConntrackResolver::Open(const Netns& ns) {
  nfct_handle* h = nullptr;
  Status st = ns.Run([&h, &ns] {
    h = nfct_open(CONNTRACK, 0);
    if (!h) {
      int err = errno;
      if (err == EPERM) {
        return Status::NoPrivilege("cannot read conntrack in " + ns.Describe() + ": CAP_NET_ADMIN missing",
                                   "run headshift as root");
      }
      return Status::Failed("cannot open conntrack (ctnetlink) in " + ns.Describe() + ": " + std::strerror(err),
                            "load the nf_conntrack_netlink module (modprobe nf_conntrack_netlink)");
    }
    return Status::Ok();
  });
  if (!st.ok()) return st;
  return std::unique_ptr<ConntrackResolver>(new ConntrackResolver(h));
}

ConntrackResolver::~ConntrackResolver() { nfct_close(handle_); }

StatusOr<std::vector<NatFlow>> ConntrackResolver::Resolve(const std::vector<Cidr>& clients,
                                                          const std::vector<uint16_t>& proxy_ports) {
  std::vector<NatFlow> out;
  ResolveContext ctx{&clients, &proxy_ports, &out};
  nfct_callback_unregister(handle_);
  if (nfct_callback_register(handle_, NFCT_T_ALL, OnEntry, &ctx) < 0) {
    return Status::Failed(std::string("conntrack callback: ") + std::strerror(errno));
  }
  uint32_t family = AF_UNSPEC;  // both IPv4 and IPv6 entries
  if (nfct_query(handle_, NFCT_Q_DUMP, &family) < 0) {
    int err = errno;
    nfct_callback_unregister(handle_);
    if (err == EPERM) {
      return Status::NoPrivilege("reading the conntrack table was refused: CAP_NET_ADMIN missing", "run headshift as root");
    }
    return Status::Failed(std::string("conntrack dump: ") + std::strerror(err));
  }
  nfct_callback_unregister(handle_);
  return out;
}

}  // namespace headshift
