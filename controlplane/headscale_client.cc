#include "controlplane/headscale_client.h"

#include <algorithm>

#include <curl/curl.h>
#include <nlohmann/json.hpp>

namespace headshift {
namespace {

std::string UrlEncode(const std::string& s) {
  std::string out;
  static const char* hex = "0123456789ABCDEF";
  for (unsigned char c : s) {
    if (isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

// The message of a grpc-gateway error body ({"code": 2, "message": "...", "details": []}), else the body.
std::string ApiError(const std::string& body) {
  auto j = nlohmann::json::parse(body, nullptr, false);
  if (!j.is_discarded() && j.is_object() && j.contains("message") && j["message"].is_string()) {
    return j["message"].get<std::string>();
  }
  return body.substr(0, 300);
}

}  // namespace

HeadscaleClient::HeadscaleClient(std::string base_url, std::string api_key, int64_t timeout_ms)
    : base_url_(std::move(base_url)), api_key_(std::move(api_key)), timeout_ms_(timeout_ms) {
  while (!base_url_.empty() && base_url_.back() == '/') base_url_.pop_back();
}

StatusOr<std::string> HeadscaleClient::NoiseKey() {
  HttpRequestOptions o;
  o.timeout_ms = timeout_ms_;
  // headscale >= 0.29 answers /key only to a supported capability version (KeyHandler, isSupportedVersion:
  // capver.MinSupportedCapabilityVersion = 113, tailscale v1.80); without one, or below it, HTTP 400.
  // 130 is a tailscale 1.9x client's; tailscale v1.102.5 sends 142.
  auto r = http_.Get(base_url_ + "/key?v=130", o);
  if (!r.ok()) return r.status();
  if (r->status != 200) {
    return Status::Failed(base_url_ + "/key answered HTTP " + std::to_string(r->status),
                          "is control_url the headscale server (not the proxy)?");
  }
  auto j = nlohmann::json::parse(r->body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object() || !j.contains("publicKey") || !j["publicKey"].is_string()) {
    return Status::Failed(base_url_ + "/key: response is not {\"publicKey\": ...} JSON");
  }
  return j["publicKey"].get<std::string>();
}

StatusOr<std::vector<ControlNode>> HeadscaleClient::ListNodes(const std::string& user) {
  HttpRequestOptions o;
  o.timeout_ms = std::max<int64_t>(timeout_ms_, kListTimeoutMs);
  o.bearer_token = api_key_;
  auto r = http_.Get(base_url_ + "/api/v1/node" + (user.empty() ? "" : "?user=" + UrlEncode(user)), o);
  if (!r.ok()) return r.status();
  if (r->status == 401) {
    return Status::Failed(base_url_ + " refused the API key (HTTP 401)",
                          "create one with `headscale apikeys create` and point api_key_file at it");
  }
  if (r->status != 200) {
    return Status::Failed(base_url_ + "/api/v1/node answered HTTP " + std::to_string(r->status));
  }
  auto j = nlohmann::json::parse(r->body, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return Status::Failed(base_url_ + "/api/v1/node: invalid JSON");
  std::vector<ControlNode> out;
  if (!j.contains("nodes") || j["nodes"].is_null()) return out;
  if (!j["nodes"].is_array()) return Status::Failed(base_url_ + "/api/v1/node: \"nodes\" is not an array");
  // A field of another type than headscale's API gives is an answer from something else: refused
  // as a whole (json::value() throws type_error on it), never taken as a half-read node list.
  try {
    for (const auto& n : j["nodes"]) {
      if (!n.is_object()) return Status::Failed(base_url_ + "/api/v1/node: a node is not an object");
      ControlNode cn;
      cn.id = n.value("id", "");
      cn.name = n.value("givenName", n.value("name", ""));
      cn.node_key = n.value("nodeKey", "");
      cn.machine_key = n.value("machineKey", "");
      if (n.contains("user") && n["user"].is_object()) cn.user = n["user"].value("name", "");
      cn.online = n.value("online", false);
      cn.last_seen = n.contains("lastSeen") && n["lastSeen"].is_string() ? n["lastSeen"].get<std::string>() : "";
      out.push_back(std::move(cn));
    }
  } catch (const nlohmann::json::exception& e) {
    return Status::Failed(base_url_ + "/api/v1/node: unexpected node list (" + e.what() + ")",
                          "is control_url a headscale server of a supported version?");
  }
  return out;
}

StatusOr<PolicyRecord> HeadscaleClient::GetPolicy() {
  HttpRequestOptions o;
  o.timeout_ms = timeout_ms_;
  o.bearer_token = api_key_;
  auto r = http_.Get(base_url_ + "/api/v1/policy", o);
  if (!r.ok()) return r.status();
  if (r->status == 401) {
    return Status::Failed(base_url_ + " refused the API key (HTTP 401)",
                          "create one with `headscale apikeys create` and point api_key_file at it");
  }
  PolicyRecord rec;
  if (r->status != 200) {
    std::string msg = ApiError(r->body);
    // Database mode before any SetPolicy: GetPolicy answers HTTP 500 "loading ACL from database: acl policy
    // not found" (types.ErrPolicyNotFound, v0.29).
    if (msg.find("acl policy not found") != std::string::npos) return rec;
    return Status::Failed(base_url_ + "/api/v1/policy answered HTTP " + std::to_string(r->status) + ": " + msg,
                          "check the node's policy.mode and policy.path");
  }
  auto j = nlohmann::json::parse(r->body, nullptr, false);
  if (j.is_discarded() || !j.is_object() || (j.contains("policy") && !j["policy"].is_string())) {
    return Status::Failed(base_url_ + "/api/v1/policy: response is not {\"policy\": ...} JSON");
  }
  rec.set = true;
  rec.policy = j.value("policy", "");
  if (j.contains("updatedAt") && j["updatedAt"].is_string()) rec.updated_at = j["updatedAt"].get<std::string>();
  return rec;
}

Status HeadscaleClient::DeleteNode(const std::string& id) {
  HttpRequestOptions o;
  o.timeout_ms = std::max<int64_t>(timeout_ms_, kDeleteTimeoutMs);
  o.bearer_token = api_key_;
  auto r = http_.Delete(base_url_ + "/api/v1/node/" + UrlEncode(id), o);
  if (!r.ok()) return r.status();
  if (r->status == 401) {
    return Status::Failed(base_url_ + " refused the API key (HTTP 401)",
                          "create one with `headscale apikeys create` and point api_key_file at it");
  }
  if (r->status == 200) return Status::Ok();
  // Already gone: headscale's own "not found" (a gRPC-gateway JSON error), not a server without the route.
  auto j = nlohmann::json::parse(r->body, nullptr, false);
  bool gateway_error = !j.is_discarded() && j.is_object() && j.contains("message");
  std::string msg = ApiError(r->body);
  if (gateway_error && msg.find("not found") != std::string::npos) return Status::Ok();
  return Status::Failed(base_url_ + "/api/v1/node/" + id + " (DELETE) answered HTTP " + std::to_string(r->status) +
                        ": " + msg);
}

StatusOr<std::string> HeadscaleClient::SetPolicy(const std::string& policy) {
  HttpRequestOptions o;
  o.timeout_ms = timeout_ms_;
  o.bearer_token = api_key_;
  nlohmann::json body = {{"policy", policy}};
  auto r = http_.Put(base_url_ + "/api/v1/policy", body.dump(), o);
  if (!r.ok()) return r.status();
  if (r->status == 401) {
    return Status::Failed(base_url_ + " refused the API key (HTTP 401)",
                          "create one with `headscale apikeys create` and point api_key_file at it");
  }
  if (r->status != 200) {
    std::string msg = ApiError(r->body);
    if (msg.find("update is disabled") != std::string::npos) {
      return Status::Refused(base_url_ + " keeps its policy in a file (policy.mode: file): " + msg,
                             "write the node's policy file and reload it (SIGHUP), or use policy.mode: database");
    }
    // grpcv1.go SetPolicy wraps what its validation refuses as "setting policy: ..." and "verifying SSH
    // rules: ..."; anything else (storing, reloading) is the node's failure, not the policy's.
    if (msg.rfind("setting policy:", 0) == 0 || msg.rfind("verifying SSH rules:", 0) == 0) {
      return Status::BadInput(base_url_ + " rejected the policy (HTTP " + std::to_string(r->status) + "): " + msg,
                              "fix the policy; the node keeps its previous one");
    }
    return Status::Failed(base_url_ + "/api/v1/policy answered HTTP " + std::to_string(r->status) + ": " + msg);
  }
  auto j = nlohmann::json::parse(r->body, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return Status::Failed(base_url_ + "/api/v1/policy: invalid JSON answer");
  return j.contains("updatedAt") && j["updatedAt"].is_string() ? j["updatedAt"].get<std::string>() : std::string();
}

}  // namespace headshift
