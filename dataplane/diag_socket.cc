#include "dataplane/diag_socket.h"

#include <arpa/inet.h>
#include <cstring>

namespace headshift {
namespace {

IpAddress AddrOf(uint8_t family, const __be32* words) {
  return family == AF_INET ? IpAddress::V4(words) : IpAddress::V6(words);
}

void PutAddr(const IpAddress& a, __be32* words) {
  std::memset(words, 0, 16);
  std::memcpy(words, a.bytes.data(), a.size());
}

}  // namespace

InetEndpoint DiagSocket::Local() const { return {AddrOf(family, id.idiag_src), ntohs(id.idiag_sport)}; }
InetEndpoint DiagSocket::Remote() const { return {AddrOf(family, id.idiag_dst), ntohs(id.idiag_dport)}; }

uint64_t DiagSocket::Cookie() const {
  return static_cast<uint64_t>(id.idiag_cookie[0]) | (static_cast<uint64_t>(id.idiag_cookie[1]) << 32);
}

const char* DiagSocket::FamilyName() const { return family == AF_INET6 ? "inet6" : "inet"; }

DiagSocket DiagSocket::FromParts(uint8_t family, uint8_t state, const InetEndpoint& local, const InetEndpoint& remote,
                                 uint64_t cookie, uint32_t ifindex) {
  DiagSocket s;
  s.family = family;
  s.state = state;
  IpAddress l = family == AF_INET6 ? local.addr.Mapped() : local.addr;
  IpAddress r = family == AF_INET6 ? remote.addr.Mapped() : remote.addr;
  PutAddr(l, s.id.idiag_src);
  PutAddr(r, s.id.idiag_dst);
  s.id.idiag_sport = htons(local.port);
  s.id.idiag_dport = htons(remote.port);
  s.id.idiag_if = ifindex;
  s.id.idiag_cookie[0] = static_cast<uint32_t>(cookie);
  s.id.idiag_cookie[1] = static_cast<uint32_t>(cookie >> 32);
  return s;
}

}  // namespace headshift
