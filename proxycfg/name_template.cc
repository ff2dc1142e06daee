#include "proxycfg/name_template.h"

#include <cctype>
#include <cstdio>

namespace headshift {
namespace {

constexpr const char kTenantToken[] = "{tenant}";

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string Printable(char c) {
  if (std::isprint(static_cast<unsigned char>(c))) return std::string("'") + c + "'";
  char buf[8];
  std::snprintf(buf, sizeof buf, "0x%02x", static_cast<unsigned char>(c));
  return buf;
}

}  // namespace

Status ValidateTenantName(const std::string& tenant) {
  if (tenant.empty()) return Status::BadInput("tenant name is empty", "pass the headscale user name of the tenant");
  if (tenant.size() > 63) {
    return Status::BadInput("tenant name '" + tenant + "' is longer than 63 bytes",
                            "a tenant name becomes a DNS label in the proxy's host rule");
  }
  if (!std::isalnum(static_cast<unsigned char>(tenant[0]))) {
    return Status::BadInput("tenant name '" + tenant + "' must start with a letter or digit");
  }
  for (char c : tenant) {
    bool ok = std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.';
    if (!ok) {
      return Status::BadInput("tenant name '" + tenant + "' contains " + Printable(c),
                              "tenant names may contain only letters, digits, '.', '_' and '-'");
    }
  }
  return Status::Ok();
}

Status ValidateBackendName(const std::string& name, const std::string& what) {
  if (name.empty()) return Status::BadInput(what + " is empty");
  for (char c : name) {
    bool ok = std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.' || c == ':';
    if (!ok) {
      return Status::BadInput(what + " '" + name + "' contains " + Printable(c),
                              "proxy backend and service names may contain only letters, digits, '.', '_', ':' "
                              "and '-'");
    }
  }
  return Status::Ok();
}

NameTemplate::NameTemplate(std::string tmpl, bool lowercase) : tmpl_(std::move(tmpl)), lowercase_(lowercase) {}

StatusOr<std::string> NameTemplate::Render(const std::string& tenant) const {
  HS_RETURN_IF_ERROR(ValidateTenantName(tenant));
  std::string out;
  size_t pos = 0;
  while (true) {
    size_t at = tmpl_.find(kTenantToken, pos);
    if (at == std::string::npos) {
      out += tmpl_.substr(pos);
      break;
    }
    out += tmpl_.substr(pos, at - pos) + tenant;
    pos = at + sizeof(kTenantToken) - 1;
  }
  return lowercase_ ? Lower(out) : out;
}

std::optional<std::string> NameTemplate::Match(const std::string& name) const {
  // The first {tenant} fixes the prefix and suffix; rendering back proves the match (handles
  // templates that use {tenant} more than once).
  size_t at = tmpl_.find(kTenantToken);
  if (at == std::string::npos) return std::nullopt;
  std::string prefix = tmpl_.substr(0, at);
  std::string suffix = tmpl_.substr(at + sizeof(kTenantToken) - 1);
  size_t next = suffix.find(kTenantToken);
  std::string fixed_suffix = next == std::string::npos ? suffix : suffix.substr(0, next);
  if (lowercase_) {
    prefix = Lower(prefix);
    fixed_suffix = Lower(fixed_suffix);
  }
  if (name.size() <= prefix.size() || name.compare(0, prefix.size(), prefix) != 0) return std::nullopt;
  std::string rest = name.substr(prefix.size());
  std::string tenant;
  if (next == std::string::npos) {
    if (rest.size() <= fixed_suffix.size() ||
        rest.compare(rest.size() - fixed_suffix.size(), fixed_suffix.size(), fixed_suffix) != 0) {
      return std::nullopt;
    }
    tenant = rest.substr(0, rest.size() - fixed_suffix.size());
  } else {
    size_t end = fixed_suffix.empty() ? std::string::npos : rest.find(fixed_suffix);
    if (end == std::string::npos || end == 0) return std::nullopt;
    tenant = rest.substr(0, end);
  }
  auto rendered = Render(tenant);
  if (!rendered.ok() || *rendered != name) return std::nullopt;
  return tenant;
}

}  // namespace headshift
