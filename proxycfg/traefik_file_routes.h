// TraefikFileRoutes: tenant routes as Traefik file-provider routers in files headshift owns
// (traefik_owned_files.h), proven live over the Traefik API (traefik_api_client.h).
//
// Set(): preflight (tenant/cluster valid, directory writable, no other file defines the tenant's
// router or a cluster service, API reachable with the configured credentials), then writes the
// services file (only if a cluster service is missing) and the tenant file, each atomically
// (temp file with a non-YAML name, fsync, rename, directory fsync). If the second write fails the
// first is undone, so the directory is byte-identical to before.
// WaitLive(): polls `GET /api/http/routers/<router>@file` until it shows the new service, status
// enabled and no error (and the TCP router likewise when the file has one), then the service
// enabled with a server UP if Traefik reports server states; the deadline is extended by
// providersThrottleDuration (proxy.traefik.throttle_ms).
// Adopt(): for routers an operator file defines, writes an owned tenant file holding a copy of the
// effective definition (and copies of the cluster services into the services file), and reports
// exactly which keys to delete from which files. The route is not managed until they are gone.
//
// Thread-safety: not thread-safe (see RouteBackend); processes serialise on the directory.
#pragma once

#include <memory>
#include <utility>

#include "common/config.h"
#include "proxycfg/name_template.h"
#include "proxycfg/route_backend.h"
#include "proxycfg/traefik_api_client.h"
#include "proxycfg/traefik_owned_files.h"
#include "proxycfg/traefik_provider_dir.h"

namespace headshift {

// What `route adopt` did and what the operator must delete.
struct AdoptReport {
  struct Item {
    std::string tenant;
    std::string router;
    std::string written;      // owned tenant file written; empty if it already existed
    std::string copied_from;  // operator file whose (effective) definition was copied
    std::string service;
    std::string cluster_id;   // cluster of `service`, empty if it is no cluster's backend
    std::vector<std::pair<std::string, std::string>> delete_keys;  // (file, key)
  };
  std::vector<Item> items;
  std::string services_written;  // the services file, if adopt changed it
  std::vector<std::pair<std::string, std::string>> service_delete_keys;  // (file, key)

  nlohmann::json ToJson() const;
  std::string ToText() const;
};

class TraefikFileRoutes : public RouteBackend {
 public:
  // REQUIRES: config.proxy.kind == ProxyKind::kTraefikFile. Copies what it needs.
  static StatusOr<std::unique_ptr<TraefikFileRoutes>> Make(const Config& config);

  std::string Kind() const override { return "traefik-file"; }
  StatusOr<std::optional<Route>> Get(const std::string& tenant) override;
  StatusOr<std::vector<Route>> List() override;
  Status CheckOwnership(const std::string& tenant) override;
  StatusOr<RouteChange> Set(const std::string& tenant, const std::string& cluster_id) override;
  StatusOr<RouteChange> Add(const std::string& tenant, const std::string& cluster_id) override;
  Status WaitLive(const std::string& tenant, const std::string& cluster_id, std::chrono::milliseconds deadline) override;
  Status Restore(const RouteChange& change) override;

  // `route adopt TENANT...`: BadInput if a tenant's router is defined nowhere.
  StatusOr<AdoptReport> Adopt(const std::vector<std::string>& tenants);
  // `route adopt --all`: every operator-defined router whose name matches router_template and whose
  // service is a cluster's backend.
  StatusOr<AdoptReport> AdoptAll();

 private:
  explicit TraefikFileRoutes(const Config& config);

  StatusOr<RouteChange> SetRoute(const std::string& tenant, const std::string& cluster_id, bool allow_add);
  Status Ownership(const TraefikProviderDirectory& scan, const std::string& tenant, const std::string& router);
  // The names Ownership() checks: the router and every cluster's service.
  std::vector<std::string> OwnershipNames(const std::string& router) const;
  StatusOr<TraefikApiClient*> Api();
  std::string ClusterOf(const std::string& service) const;
  std::vector<TraefikServiceDef> WantedServices(const TraefikProviderDirectory* copy_from) const;
  TraefikRouterSpec Spec(const std::string& router, const std::string& host) const;

  Config config_;
  TraefikConfig traefik_;
  NameTemplate router_template_;
  NameTemplate host_template_;
  TraefikOwnedFiles files_;
  std::unique_ptr<TraefikApiClient> api_;
};

}  // namespace headshift
