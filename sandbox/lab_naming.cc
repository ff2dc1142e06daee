#include "sandbox/lab_naming.h"

#include <cctype>
#include <cstdint>
#include <cstdio>

namespace headshift::sandbox::lab {

std::string NsName(const std::string& lab, const std::string& role) { return "sandbox-" + lab + "-" + role; }
std::string NsPrefix(const std::string& lab) { return "sandbox-" + lab + "-"; }

// Root-netns interface names must be unique on the host and at most 15 chars: "sb" + 6 hex of the
// lab name (FNV-1a, stable across builds) + role.
std::string LinkPrefix(const std::string& lab) {
  uint32_t h = 2166136261u;
  for (unsigned char c : lab) {
    h ^= c;
    h *= 16777619u;
  }
  char buf[16];
  snprintf(buf, sizeof buf, "sb%06x", h & 0xffffff);
  return buf;
}

std::string Backend(const std::string& cluster) { return "headscale-cluster" + cluster; }
std::string LabLinkAlias(const std::string& lab) { return NsPrefix(lab); }

std::string Addr(const std::string& subnet, int host) { return subnet + std::to_string(host); }

bool ValidName(const std::string& s, size_t max) {
  if (s.empty() || s.size() > max) return false;
  for (char c : s) {
    if (!(std::islower(static_cast<unsigned char>(c)) || std::isdigit(static_cast<unsigned char>(c)) || c == '-')) {
      return false;
    }
  }
  return true;
}
}  // namespace headshift::sandbox::lab
