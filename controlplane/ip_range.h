// IpRange: an address set as headscale writes it in a packet filter (tailcfg.FilterRule SrcIPs and
// DstPorts[].IP) and in its prefixes: "*" (every address), "100.64.0.1", "100.64.0.0/10",
// "fd7a:115c:a1e0::/48" or a range "100.64.0.1-100.64.0.9". Holds first..last of one address family.
//
// Thread-safety: a value type.
#pragma once

#include <array>
#include <optional>
#include <string>

namespace headshift {

class IpRange {
 public:
  // nullopt for text that is none of the forms above.
  static std::optional<IpRange> Parse(const std::string& text);

  // True if `ip` (a single address, v4 or v6) is in the range. False for an unparsable `ip`.
  bool Contains(const std::string& ip) const;

 private:
  using Addr = std::array<unsigned char, 16>;
  static std::optional<std::pair<int, Addr>> ParseAddr(const std::string& s);  // (AF_INET|AF_INET6, bytes)

  bool any_ = false;
  int family_ = 0;
  Addr first_{};
  Addr last_{};
};

}  // namespace headshift
