// Cidr: a client address prefix (IPv4 or IPv6) and ParseCidr, the single parser the CLI, config and
// playbooks use for client ranges.
//
// Matching rule (the userspace check that decides every selection): the socket's address is first
// Unmapped(), so an IPv4 client seen as ::ffff:a.b.c.d on a dual-stack listener matches an IPv4
// prefix; an IPv6 prefix matches only real IPv6 addresses (::/0 is "every IPv6 client", not every
// client). A v4-mapped prefix (::ffff:10.0.0.0/104) is parsed as the IPv4 prefix it denotes.
//
// Thread-safety: values.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "dataplane/ip_address.h"

namespace headshift {

struct Cidr {
  IpAddress network;  // host bits are zero
  int prefix_len = 0;

  bool Contains(const IpAddress& addr) const;
  std::string ToString() const;  // "10.0.0.0/8", "2001:db8::/32"
  auto operator<=>(const Cidr&) const = default;
};

// "10.0.0.0/8", "10.0.0.7" (= /32), "2001:db8::/32", "2001:db8::7" (= /128).
// BadInput naming the value: not an address, prefix length out of range, or host bits set
// ("10.0.0.1/8": the fix names 10.0.0.0/8, since a typo there would select the wrong clients).
StatusOr<Cidr> ParseCidr(std::string_view text);

// Parses each element; also splits elements on commas ("10.0.0.0/8,192.168.0.0/16").
StatusOr<std::vector<Cidr>> ParseCidrList(const std::vector<std::string>& texts);

}  // namespace headshift
