#include "common/redact.h"

#include <algorithm>
#include <mutex>
#include <regex>
#include <set>

#include <libpq-fe.h>

#include "common/shared_library.h"

namespace headshift {
namespace {

std::mutex& Mu() {
  static std::mutex mu;
  return mu;
}
std::set<std::string, std::greater<>>& Secrets() {  // longest-first not needed; order irrelevant
  static std::set<std::string, std::greater<>> s;
  return s;
}

}  // namespace

void RegisterSecret(std::string_view secret) {
  if (secret.size() < 4) return;
  std::lock_guard<std::mutex> lock(Mu());
  Secrets().emplace(secret);
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
  // Unregistered DSN passwords: key/value form and URI userinfo.
  static const std::regex kv(R"((password\s*=\s*)('[^']*'|[^\s']+))", std::regex::icase);
  static const std::regex uri(R"(((?:postgres|postgresql|https?)://[^:/@\s]+:)([^@\s]+)@)");
  if (out.find("assword") != std::string::npos) out = std::regex_replace(out, kv, "$1***");
  if (out.find("://") != std::string::npos) out = std::regex_replace(out, uri, "$1***@");
}

void ClearSecretsForTest() {
  std::lock_guard<std::mutex> lock(Mu());
  Secrets().clear();
}

}  // namespace headshift
