#include "proxycfg/traefik_api_client.h"

#include <nlohmann/json.hpp>

namespace headshift {
namespace {

std::vector<std::string> Errors(const nlohmann::json& j) {
  std::vector<std::string> out;
  if (!j.contains("error")) return out;
  const auto& e = j.at("error");
  if (e.is_array()) {
    for (const auto& x : e) {
      if (x.is_string()) out.push_back(x.get<std::string>());
    }
  } else if (e.is_string() && !e.get<std::string>().empty()) {
    out.push_back(e.get<std::string>());
  }
  return out;
}

std::string Str(const nlohmann::json& j, const char* k) {
  return j.contains(k) && j.at(k).is_string() ? j.at(k).get<std::string>() : "";
}

std::string Join(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : "; ") + x;
  return s;
}

}  // namespace

std::string TraefikRouterState::Describe() const {
  std::string s = "router " + name + " service=" + (service.empty() ? "(none)" : service) + " status=" + status;
  if (!errors.empty()) s += " error=[" + Join(errors) + "]";
  return s;
}

std::string TraefikServiceState::Describe() const {
  std::string s = "service " + name + " status=" + status;
  for (const auto& [server, st] : server_status) s += " " + server + "=" + st;
  if (!errors.empty()) s += " error=[" + Join(errors) + "]";
  return s;
}

StatusOr<std::unique_ptr<TraefikApiClient>> TraefikApiClient::Make(const TraefikConfig& traefik, int64_t timeout_ms) {
  HttpRequestOptions o;
  o.timeout_ms = timeout_ms;
  o.ca_file = traefik.api_tls.ca_file;
  o.insecure_skip_verify = traefik.api_tls.insecure_skip_verify;
  if (!traefik.api_auth.bearer_token.empty()) {
    auto tok = ResolveSecret(traefik.api_auth.bearer_token, "proxy.traefik.api_auth.bearer_token");
    if (!tok.ok()) return tok.status();
    o.bearer_token = *tok;
  } else if (!traefik.api_auth.basic_user.empty()) {
    auto pw = ResolveSecret(traefik.api_auth.basic_password, "proxy.traefik.api_auth.basic_password");
    if (!pw.ok()) return pw.status();
    o.basic_user = traefik.api_auth.basic_user;
    o.basic_password = *pw;
  }
  std::string base = traefik.api_url;
  while (!base.empty() && base.back() == '/') base.pop_back();
  return std::unique_ptr<TraefikApiClient>(new TraefikApiClient(base, o));
}

StatusOr<std::optional<std::string>> TraefikApiClient::Fetch(const std::string& path) {
  auto r = http_.Get(base_url_ + path, opts_);
  if (!r.ok()) {
    return Status::Failed("Traefik API unreachable at " + base_url_ + ": " + r.status().message(),
                          "check proxy.traefik.api_url and that Traefik's API is enabled (api: {}) on an entry "
                          "point this host can reach");
  }
  if (r->status == 401 || r->status == 403) {
    return Status::BadInput("Traefik API at " + base_url_ + " refused the credentials (HTTP " +
                                std::to_string(r->status) + " for " + path + ")",
                            "check proxy.traefik.api_auth (basic_user/basic_password_* or bearer_token_*)");
  }
  if (r->status == 404) return std::optional<std::string>();
  if (r->status != 200) {
    std::string body = r->body.substr(0, 200);
    return Status::Failed("Traefik API answered HTTP " + std::to_string(r->status) + " for " + path + ": " + body);
  }
  return std::optional<std::string>(r->body);
}

StatusOr<std::optional<TraefikRouterState>> TraefikApiClient::GetRouter(const std::string& protocol,
                                                                        const std::string& name) {
  std::string path = "/api/" + protocol + "/routers/" + name;
  auto body = Fetch(path);
  if (!body.ok()) return body.status();
  if (!body->has_value()) return std::optional<TraefikRouterState>();
  auto j = nlohmann::json::parse(**body, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return Status::Failed("Traefik API: " + path + " did not return a JSON object");
  TraefikRouterState s;
  s.name = Str(j, "name");
  s.service = Str(j, "service");
  s.status = Str(j, "status");
  s.errors = Errors(j);
  return std::optional<TraefikRouterState>(s);
}

StatusOr<std::optional<TraefikServiceState>> TraefikApiClient::GetService(const std::string& protocol,
                                                                          const std::string& name) {
  std::string path = "/api/" + protocol + "/services/" + name;
  auto body = Fetch(path);
  if (!body.ok()) return body.status();
  if (!body->has_value()) return std::optional<TraefikServiceState>();
  auto j = nlohmann::json::parse(**body, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return Status::Failed("Traefik API: " + path + " did not return a JSON object");
  TraefikServiceState s;
  s.name = Str(j, "name");
  s.status = Str(j, "status");
  s.errors = Errors(j);
  if (j.contains("serverStatus") && j.at("serverStatus").is_object()) {
    for (const auto& [k, v] : j.at("serverStatus").items()) {
      if (v.is_string()) s.server_status[k] = v.get<std::string>();
    }
  }
  return std::optional<TraefikServiceState>(s);
}

}  // namespace headshift
