#include "proxycfg/route_backend.h"

#include "proxycfg/haproxy_map_routes.h"
#include "proxycfg/traefik_file_routes.h"

namespace headshift {

nlohmann::json Route::ToJson() const {
  nlohmann::json j = {{"tenant", tenant}, {"cluster", cluster_id}, {"backend", backend},
                      {"source", source}, {"managed", managed}};
  if (!detail.empty()) j["detail"] = detail;
  return j;
}

nlohmann::json RouteChange::ToJson() const {
  nlohmann::json j = {{"tenant", tenant}, {"new_cluster", new_cluster}, {"new_backend", new_backend},
                      {"changed", changed}};
  j["previous_backend"] = previous_backend ? nlohmann::json(*previous_backend) : nlohmann::json(nullptr);
  j["previous_cluster"] = previous_cluster ? nlohmann::json(*previous_cluster) : nlohmann::json(nullptr);
  return j;
}

StatusOr<RouteChange> RouteChange::FromJson(const nlohmann::json& j) {
  auto str = [&](const char* k, bool nullable, std::optional<std::string>* out) -> Status {
    if (!j.contains(k)) return Status::BadInput(std::string("route change: missing field ") + k);
    const auto& v = j.at(k);
    if (v.is_null() && nullable) {
      *out = std::nullopt;
      return Status::Ok();
    }
    if (!v.is_string()) return Status::BadInput(std::string("route change: field ") + k + " is not a string");
    *out = v.get<std::string>();
    return Status::Ok();
  };
  if (!j.is_object()) return Status::BadInput("route change: expected a JSON object");
  RouteChange c;
  std::optional<std::string> tenant, new_cluster, new_backend;
  HS_RETURN_IF_ERROR(str("tenant", false, &tenant));
  HS_RETURN_IF_ERROR(str("new_cluster", false, &new_cluster));
  HS_RETURN_IF_ERROR(str("new_backend", false, &new_backend));
  HS_RETURN_IF_ERROR(str("previous_backend", true, &c.previous_backend));
  HS_RETURN_IF_ERROR(str("previous_cluster", true, &c.previous_cluster));
  c.tenant = *tenant;
  c.new_cluster = *new_cluster;
  c.new_backend = *new_backend;
  if (j.contains("changed")) {
    if (!j.at("changed").is_boolean()) return Status::BadInput("route change: field changed is not a boolean");
    c.changed = j.at("changed").get<bool>();
  }
  return c;
}

StatusOr<std::unique_ptr<RouteBackend>> MakeRouteBackend(const Config& config) {
  if (config.proxy.kind == ProxyKind::kFleet) {
    return Status::BadInput("proxy.kind is fleet: this host holds no tenant route",
                            "run `headshift route` on each proxy host with that host's config "
                            "(playbooks/ansible does), or set proxy.kind to haproxy or traefik-file");
  }
  if (config.proxy.kind == ProxyKind::kHaproxy) {
    auto b = HaproxyMapRoutes::Make(config);
    if (!b.ok()) return b.status();
    return std::unique_ptr<RouteBackend>(std::move(b).value());
  }
  auto b = TraefikFileRoutes::Make(config);
  if (!b.ok()) return b.status();
  return std::unique_ptr<RouteBackend>(std::move(b).value());
}

}  // namespace headshift
