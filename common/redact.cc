#include "common/redact.h"

#include <algorithm>
#include <mutex>
#include <regex>
#include <set>

#include <libpq-fe.h>
#include <nlohmann/json.hpp>

#include "common/shared_library.h"

namespace headshift {
namespace {

std::mutex& Mu() {
  static std::mutex mu;
  return mu;
}
// Longest first: a secret that contains another is masked whole, not around the shorter one.
struct LongestFirst {
  bool operator()(const std::string& a, const std::string& b) const {
    return a.size() != b.size() ? a.size() > b.size() : a < b;
  }
};
std::set<std::string, LongestFirst>& Secrets() {
  static std::set<std::string, LongestFirst> s;
  return s;
}

}  // namespace

void RegisterSecret(std::string_view secret) {
  if (secret.size() < 4) return;
  // JSON output is redacted after serialization: a secret with a quote, backslash or control
  // character appears there escaped, so its escaped form is a secret too.
  std::string escaped = nlohmann::json(std::string(secret)).dump();
  escaped = escaped.substr(1, escaped.size() - 2);
  std::lock_guard<std::mutex> lock(Mu());
  Secrets().emplace(secret);
  if (escaped != secret) Secrets().emplace(std::move(escaped));
}

void RegisterDsnSecrets(std::string_view dsn) {
  // Without libpq the DSN cannot be parsed; Redact() still masks password=... and URI passwords.
  if (!LoadLibpq().ok()) return;
  std::string copy(dsn);
  char* err = nullptr;
  PQconninfoOption* opts = PQconninfoParse(copy.c_str(), &err);
  if (err) PQfreemem(err);
  if (!opts) return;
  for (PQconninfoOption* o = opts; o->keyword; ++o) {
    if (o->val && std::string_view(o->keyword) == "password") RegisterSecret(o->val);
  }
  PQconninfoFree(opts);
}

std::string Redact(std::string_view text) {
  std::string out(text);
  RedactInPlace(out);
  return out;
}

void RedactInPlace(std::string& out) {
  {
    std::lock_guard<std::mutex> lock(Mu());
    for (const auto& s : Secrets()) {
      size_t pos = 0;
      while ((pos = out.find(s, pos)) != std::string::npos) {
        out.replace(pos, s.size(), "***");
        pos += 3;
      }
    }
  }
  // Unregistered credentials: DSN passwords in key/value form (a quoted value may hold \' and \\),
  // URI userinfo (the user may be empty), and HTTP Authorization values.
  static const std::regex kv(R"((password\s*=\s*)('(?:[^'\\]|\\.)*'|[^\s']+))", std::regex::icase);
  static const std::regex uri(R"(((?:postgres|postgresql|https?)://[^:/@\s]*:)([^@\s]+)@)");
  static const std::regex auth(R"(((?:[Aa]uthorization:\s*(?:Bearer|Basic)|Bearer)\s+)[^\s"',;]+)");
  if (out.find("assword") != std::string::npos) out = std::regex_replace(out, kv, "$1***");
  if (out.find("://") != std::string::npos) out = std::regex_replace(out, uri, "$1***@");
  if (out.find("Bearer") != std::string::npos || out.find("uthorization") != std::string::npos) {
    out = std::regex_replace(out, auth, "$1***");
  }
}

bool ContainsSecret(std::string_view text) {
  std::lock_guard<std::mutex> lock(Mu());
  for (const auto& s : Secrets()) {
    if (text.find(s) != std::string_view::npos) return true;
  }
  return false;
}

void ClearSecretsForTest() {
  std::lock_guard<std::mutex> lock(Mu());
  Secrets().clear();
}

}  // namespace headshift
