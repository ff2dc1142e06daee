// IpAddress / InetEndpoint: an IPv4 or IPv6 address (and port) as the kernel reports it, with the
// one conversion the dataplane needs everywhere: a v4-mapped IPv6 address (::ffff:a.b.c.d, how an
// IPv4 client appears on a dual-stack [::] listener) is the IPv4 address a.b.c.d (Unmapped()).
//
// Thread-safety: values; copies are independent.
#pragma once

#include <array>
#include <compare>
#include <cstdint>
#include <string>
#include <string_view>
#include <sys/socket.h>

#include "common/status.h"

namespace headshift {

struct IpAddress {
  int family = AF_UNSPEC;          // AF_INET or AF_INET6 (AF_UNSPEC: not set)
  std::array<uint8_t, 16> bytes{};  // network order; IPv4 uses bytes[0..3], the rest is zero

  // From 4 (IPv4) or 16 (IPv6) bytes in network order.
  static IpAddress V4(const void* be4);
  static IpAddress V6(const void* be16);
  // "10.0.0.1", "2001:db8::1". BadInput naming the text otherwise.
  static StatusOr<IpAddress> Parse(std::string_view text);

  size_t size() const { return family == AF_INET ? 4 : family == AF_INET6 ? 16 : 0; }
  bool IsV4Mapped() const;
  // The IPv4 address of a v4-mapped IPv6 address; any other address unchanged.
  IpAddress Unmapped() const;
  // The v4-mapped IPv6 form of an IPv4 address; any other address unchanged.
  IpAddress Mapped() const;
  std::string ToString() const;

  auto operator<=>(const IpAddress&) const = default;
};

struct InetEndpoint {
  IpAddress addr;
  uint16_t port = 0;  // host order

  // "10.0.0.1:443", "[2001:db8::1]:443".
  std::string ToString() const;
  // Appends ToString() to `out` without temporaries (large reports).
  void AppendTo(std::string& out) const;
  // Parses the ToString() form. BadInput naming the text otherwise.
  static StatusOr<InetEndpoint> Parse(std::string_view text);

  auto operator<=>(const InetEndpoint&) const = default;
};

// A TCP connection as seen from one end: the proxy's local endpoint and the remote (client or NAT)
// endpoint. Both are kept Unmapped() so IPv4 connections compare equal on dual-stack sockets.
struct FlowTuple {
  InetEndpoint local;
  InetEndpoint remote;

  FlowTuple Normalized() const { return {{local.addr.Unmapped(), local.port}, {remote.addr.Unmapped(), remote.port}}; }
  auto operator<=>(const FlowTuple&) const = default;
};

}  // namespace headshift
