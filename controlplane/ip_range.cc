#include "controlplane/ip_range.h"

#include <arpa/inet.h>

#include <cstdlib>

namespace headshift {

std::optional<std::pair<int, IpRange::Addr>> IpRange::ParseAddr(const std::string& s) {
  Addr a{};
  if (inet_pton(AF_INET, s.c_str(), a.data()) == 1) return std::make_pair(AF_INET, a);
  if (inet_pton(AF_INET6, s.c_str(), a.data()) == 1) return std::make_pair(AF_INET6, a);
  return std::nullopt;
}

std::optional<IpRange> IpRange::Parse(const std::string& text) {
  IpRange r;
  if (text == "*") {
    r.any_ = true;
    return r;
  }
  size_t dash = text.find('-');
  if (dash != std::string::npos) {
    auto a = ParseAddr(text.substr(0, dash));
    auto b = ParseAddr(text.substr(dash + 1));
    if (!a || !b || a->first != b->first) return std::nullopt;
    r.family_ = a->first;
    r.first_ = a->second;
    r.last_ = b->second;
    return r;
  }
  size_t slash = text.find('/');
  auto a = ParseAddr(text.substr(0, slash));
  if (!a) return std::nullopt;
  r.family_ = a->first;
  int width = a->first == AF_INET ? 32 : 128;
  int bits = width;
  if (slash != std::string::npos) {
    std::string b = text.substr(slash + 1);
    char* end = nullptr;
    long v = std::strtol(b.c_str(), &end, 10);
    if (b.empty() || *end != '\0' || v < 0 || v > width) return std::nullopt;
    bits = static_cast<int>(v);
  }
  r.first_ = a->second;
  r.last_ = a->second;
  for (int i = bits; i < width; ++i) {
    unsigned char mask = static_cast<unsigned char>(0x80 >> (i % 8));
    r.first_[i / 8] = static_cast<unsigned char>(r.first_[i / 8] & ~mask);
    r.last_[i / 8] = static_cast<unsigned char>(r.last_[i / 8] | mask);
  }
  return r;
}

bool IpRange::Contains(const std::string& ip) const {
  auto a = ParseAddr(ip);
  if (!a) return false;
  if (any_) return true;
  if (a->first != family_) return false;
  size_t n = family_ == AF_INET ? 4 : 16;
  auto cmp = [n](const Addr& x, const Addr& y) {
    for (size_t i = 0; i < n; ++i) {
      if (x[i] != y[i]) return x[i] < y[i] ? -1 : 1;
    }
    return 0;
  };
  return cmp(first_, a->second) <= 0 && cmp(a->second, last_) <= 0;
}

}  // namespace headshift
