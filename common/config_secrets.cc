// Secrets the config refers to (*_env / *_file): read on use, registered for redaction at once.
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "common/config.h"
#include "common/redact.h"

namespace headshift {

namespace {
StatusOr<std::string> ReadSecret(const SecretRef& ref, const std::string& what) {
  std::string value;
  if (!ref.env.empty()) {
    const char* v = std::getenv(ref.env.c_str());
    if (!v || !*v) {
      return Status::BadInput(what + ": environment variable $" + ref.env + " is not set",
                              "export " + ref.env + "=... or use a *_file setting");
    }
    value = v;
  } else if (!ref.file.empty()) {
    std::ifstream in(ref.file);
    if (!in) {
      return Status::BadInput(what + ": cannot read secret file " + ref.file,
                              "create it (mode 0600) or fix the path in the config");
    }
    std::stringstream ss;
    ss << in.rdbuf();
    value = ss.str();
    while (!value.empty() && (value.back() == '\n' || value.back() == '\r')) value.pop_back();
    if (value.empty()) return Status::BadInput(what + ": secret file " + ref.file + " is empty");
  } else {
    return Status::BadInput(what + ": no secret configured");
  }
  return value;
}
}  // namespace

StatusOr<std::string> ResolveSecret(const SecretRef& ref, const std::string& what) {
  auto v = ReadSecret(ref, what);
  if (v.ok()) RegisterSecret(*v);
  return v;
}

StatusOr<std::string> ResolveDsn(const SecretRef& ref, const std::string& what) {
  auto v = ReadSecret(ref, what);
  if (v.ok()) RegisterDsnSecrets(*v);
  return v;
}

}  // namespace headshift
