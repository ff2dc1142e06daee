// TraefikApiClient: the read-only Traefik API (`GET /api/{http,tcp}/{routers,services}/<name>@file`)
// over libcurl (common/http_client.h), with basic auth or a bearer token and TLS options from
// proxy.traefik. Failures are classified so a caller can name them:
//   API unreachable (connect/TLS/timeout)        -> Failed "Traefik API unreachable at ..."
//   credentials refused (HTTP 401/403)           -> BadInput "... refused the credentials ..."
//   unknown router/service (HTTP 404)            -> OK with nullopt
//   any other status or a body that is not JSON  -> Failed with the status and a body excerpt
// Secrets are resolved (and registered for redaction) by Make().
//
// Thread-safety: not thread-safe (one libcurl handle); use one per thread.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/config.h"
#include "common/http_client.h"
#include "common/status.h"

namespace headshift {

// A router as the API shows it (runtime.RouterInfo).
struct TraefikRouterState {
  std::string name;     // e.g. "hsa@file"
  std::string service;  // as written in the config (same-provider references are unqualified)
  std::string status;   // "enabled", "disabled", "warning"
  std::vector<std::string> errors;
  std::string Describe() const;
};

// A service as the API shows it (runtime.ServiceInfo).
struct TraefikServiceState {
  std::string name;
  std::string status;
  std::vector<std::string> errors;
  std::map<std::string, std::string> server_status;  // server URL/address -> "UP" / "DOWN"
  std::string Describe() const;
};

class TraefikApiClient {
 public:
  // BadInput if a configured secret cannot be read. REQUIRES: !traefik.api_url.empty().
  static StatusOr<std::unique_ptr<TraefikApiClient>> Make(const TraefikConfig& traefik, int64_t timeout_ms);

  // `protocol` is "http" or "tcp"; `name` is qualified, e.g. "hsa@file".
  StatusOr<std::optional<TraefikRouterState>> GetRouter(const std::string& protocol, const std::string& name);
  StatusOr<std::optional<TraefikServiceState>> GetService(const std::string& protocol, const std::string& name);

  const std::string& base_url() const { return base_url_; }

 private:
  TraefikApiClient(std::string base_url, HttpRequestOptions opts) : base_url_(std::move(base_url)), opts_(std::move(opts)) {}
  // The parsed JSON body, nullopt on 404.
  StatusOr<std::optional<std::string>> Fetch(const std::string& path);

  std::string base_url_;
  HttpRequestOptions opts_;
  HttpClient http_;
};

}  // namespace headshift
