#include "dataplane/cidr.h"

#include <charconv>

namespace headshift {
namespace {

// True when the first `bits` bits of a and b are equal.
bool PrefixEqual(const uint8_t* a, const uint8_t* b, int bits) {
  int full = bits / 8;
  for (int i = 0; i < full; ++i) {
    if (a[i] != b[i]) return false;
  }
  int rest = bits % 8;
  if (rest == 0) return true;
  uint8_t mask = static_cast<uint8_t>(0xff << (8 - rest));
  return (a[full] & mask) == (b[full] & mask);
}

}  // namespace

bool Cidr::Contains(const IpAddress& addr) const {
  IpAddress a = addr.Unmapped();
  if (a.family != network.family) return false;
  return PrefixEqual(a.bytes.data(), network.bytes.data(), prefix_len);
}

std::string Cidr::ToString() const { return network.ToString() + "/" + std::to_string(prefix_len); }

StatusOr<Cidr> ParseCidr(std::string_view text) {
  const std::string value(text);
  const std::string fix = "write a client address or prefix such as 10.20.0.0/16, 10.20.0.7 or 2001:db8:1::/48";
  if (text.empty()) return Status::BadInput("empty client CIDR", fix);
  size_t slash = text.find('/');
  auto addr = IpAddress::Parse(text.substr(0, slash));
  if (!addr.ok()) return Status::BadInput("client CIDR '" + value + "' is not an IP address or prefix", fix);
  int max_len = addr->family == AF_INET ? 32 : 128;
  int len = max_len;
  if (slash != std::string_view::npos) {
    std::string_view p = text.substr(slash + 1);
    auto [end, ec] = std::from_chars(p.data(), p.data() + p.size(), len);
    if (p.empty() || ec != std::errc() || end != p.data() + p.size() || len < 0 || len > max_len) {
      return Status::BadInput("client CIDR '" + value + "' has an invalid prefix length (0.." +
                                  std::to_string(max_len) + ")",
                              fix);
    }
  }
  Cidr c{*addr, len};
  // Host bits must be zero: "10.0.0.1/8" is more likely a typo than a wish to select 10/8.
  for (int bit = len; bit < max_len; ++bit) {
    if (c.network.bytes[bit / 8] & (0x80 >> (bit % 8))) {
      Cidr masked = c;
      for (int b = len; b < max_len; ++b) masked.network.bytes[b / 8] &= static_cast<uint8_t>(~(0x80 >> (b % 8)));
      return Status::BadInput("client CIDR '" + value + "' has host bits set after /" + std::to_string(len),
                              "write " + masked.ToString() + " for the whole prefix, or the address alone for one client");
    }
  }
  // ::ffff:a.b.c.d/n (n >= 96) is the IPv4 prefix a.b.c.d/(n-96): one rule for an IPv4 client,
  // however the socket carrying it is addressed.
  if (c.network.IsV4Mapped() && len >= 96) return Cidr{c.network.Unmapped(), len - 96};
  return c;
}

StatusOr<std::vector<Cidr>> ParseCidrList(const std::vector<std::string>& texts) {
  std::vector<Cidr> out;
  for (const auto& t : texts) {
    std::string_view rest = t;
    while (true) {
      size_t comma = rest.find(',');
      auto c = ParseCidr(rest.substr(0, comma));
      if (!c.ok()) return c.status();
      out.push_back(*c);
      if (comma == std::string_view::npos) break;
      rest = rest.substr(comma + 1);
    }
  }
  return out;
}

}  // namespace headshift
