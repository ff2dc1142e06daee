#include "dataplane/ip_address.h"

#include <arpa/inet.h>
#include <charconv>
#include <cstring>

namespace headshift {

IpAddress IpAddress::V4(const void* be4) {
  IpAddress a;
  a.family = AF_INET;
  std::memcpy(a.bytes.data(), be4, 4);
  return a;
}

IpAddress IpAddress::V6(const void* be16) {
  IpAddress a;
  a.family = AF_INET6;
  std::memcpy(a.bytes.data(), be16, 16);
  return a;
}

StatusOr<IpAddress> IpAddress::Parse(std::string_view text) {
  std::string s(text);
  uint8_t buf[16];
  if (::inet_pton(AF_INET, s.c_str(), buf) == 1) return V4(buf);
  if (::inet_pton(AF_INET6, s.c_str(), buf) == 1) return V6(buf);
  return Status::BadInput("'" + s + "' is not an IP address", "write an IPv4 (10.0.0.1) or IPv6 (2001:db8::1) address");
}

bool IpAddress::IsV4Mapped() const {
  static constexpr uint8_t kPrefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  return family == AF_INET6 && std::memcmp(bytes.data(), kPrefix, 12) == 0;
}

IpAddress IpAddress::Unmapped() const { return IsV4Mapped() ? V4(bytes.data() + 12) : *this; }

IpAddress IpAddress::Mapped() const {
  if (family != AF_INET) return *this;
  uint8_t b[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  std::memcpy(b + 12, bytes.data(), 4);
  return V6(b);
}

std::string IpAddress::ToString() const {
  char buf[INET6_ADDRSTRLEN] = "";
  if (family == AF_INET || family == AF_INET6) ::inet_ntop(family, bytes.data(), buf, sizeof buf);
  return buf;
}

std::string InetEndpoint::ToString() const {
  std::string out;
  AppendTo(out);
  return out;
}

void InetEndpoint::AppendTo(std::string& out) const {
  char buf[INET6_ADDRSTRLEN + 16];
  char* p = buf;
  if (addr.family == AF_INET6) *p++ = '[';
  if ((addr.family == AF_INET || addr.family == AF_INET6) && ::inet_ntop(addr.family, addr.bytes.data(), p, INET6_ADDRSTRLEN)) {
    p += std::strlen(p);
  }
  if (addr.family == AF_INET6) *p++ = ']';
  *p++ = ':';
  p = std::to_chars(p, buf + sizeof buf, port).ptr;
  out.append(buf, static_cast<size_t>(p - buf));
}

StatusOr<InetEndpoint> InetEndpoint::Parse(std::string_view text) {
  auto bad = [&] {
    // Appended, not "'" + std::string(text): that operator+ trips GCC 12's -Wrestrict false positive at -O3.
    return Status::BadInput(std::string("'").append(text).append("' is not an address:port endpoint"),
                            "write 10.0.0.1:443 or [2001:db8::1]:443");
  };
  size_t colon = text.rfind(':');
  if (colon == std::string_view::npos || colon == 0) return bad();
  std::string_view host = text.substr(0, colon), port = text.substr(colon + 1);
  if (host.front() == '[') {
    if (host.size() < 3 || host.back() != ']') return bad();
    host = host.substr(1, host.size() - 2);
  }
  unsigned p = 0;
  auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), p);
  if (ec != std::errc() || end != port.data() + port.size() || p > 65535) return bad();
  auto a = IpAddress::Parse(host);
  if (!a.ok()) return bad();
  return InetEndpoint{*a, static_cast<uint16_t>(p)};
}

}  // namespace headshift
