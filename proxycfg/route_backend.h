// RouteBackend: the reverse-proxy half of a migration — which cluster serves a tenant's host name.
//
// Two implementations: TraefikFileRoutes (files headshift owns in a Traefik file-provider
// directory, proven live over the Traefik API) and HaproxyMapRoutes (a host -> backend map changed
// through the HAProxy runtime socket and persisted in the map file). MakeRouteBackend() picks one
// from the config.
//
// The orchestrator calls the steps separately, so each can be journalled and resumed:
//   CheckOwnership(tenant)            preflight, changes nothing
//   change = Set(tenant, cluster)     flips the route, records what was there before
//   WaitLive(tenant, cluster, d)      proves the proxy serves the new route
//   Restore(change)                   puts the previous route back (rollback)
// Every step is idempotent: Set to the current value is a no-op success (change.changed == false),
// Restore of an already-restored change is a no-op success. A failed Set or Restore leaves the proxy
// configuration as it was (files byte-identical, runtime state unchanged).
//
// Error codes (Status code = CLI exit code): BadInput (2) for an invalid or unknown tenant or cluster
// and for credentials the proxy API refuses; Refused (3) when ownership is unclear (the tenant's
// router or a cluster service is also defined elsewhere, a map key is duplicated) or the route was
// changed by someone else since `change`; Failed (1) for an unreachable proxy, a missing runtime
// socket, a directory that is not writable or a route that is not live by the deadline;
// NeedsOperator (4) when an undo after a failed write itself failed.
//
// Thread-safety: a RouteBackend is not thread-safe; use one per thread. Concurrent processes are
// serialised by an exclusive flock on the directory holding the files headshift writes.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/config.h"
#include "common/status.h"

namespace headshift {

// A tenant's route as the proxy configuration states it.
struct Route {
  std::string tenant;
  std::string cluster_id;  // cluster whose backend the route points at; empty if none matches
  std::string backend;     // Traefik service / HAProxy backend name exactly as configured
  std::string source;      // file defining it (Traefik) or the map file (HAProxy)
  bool managed = true;     // false: defined in a file headshift does not own (see `route adopt`)
  std::string detail;      // human note, e.g. runtime and map file disagree

  nlohmann::json ToJson() const;
};

// What Set() did, with enough to undo it exactly. Persist it with ToJson()/FromJson().
struct RouteChange {
  std::string tenant;
  std::optional<std::string> previous_backend;  // nullopt: the tenant had no route before
  std::optional<std::string> previous_cluster;  // nullopt: no route, or a backend of no known cluster
  std::string new_cluster;
  std::string new_backend;
  bool changed = false;  // false: the route already pointed at new_backend (no-op)

  nlohmann::json ToJson() const;
  static StatusOr<RouteChange> FromJson(const nlohmann::json& j);
};

class RouteBackend {
 public:
  virtual ~RouteBackend() = default;

  // Which proxy this is ("haproxy", "traefik-file").
  virtual std::string Kind() const = 0;

  // The tenant's route, or nullopt if the proxy configuration has none. BadInput for an invalid
  // tenant name.
  virtual StatusOr<std::optional<Route>> Get(const std::string& tenant) = 0;

  // Every tenant route (entries whose host/router name matches the configured template), by tenant.
  virtual StatusOr<std::vector<Route>> List() = 0;

  // Preflight: OK if headshift alone decides the tenant's route. Refused naming the file and key
  // when the router or a cluster service is defined in a file headshift does not own (Traefik
  // applies the first definition and skips the rest) or the tenant's map key appears twice; Traefik:
  // also Refused when any file of the directory does not parse (Traefik then applies no change).
  virtual Status CheckOwnership(const std::string& tenant) = 0;

  // Points the tenant's existing route at `cluster_id`. BadInput if the tenant has no route (use
  // Add) or the cluster is unknown. Checks ownership, writability and proxy reachability before
  // the first write.
  virtual StatusOr<RouteChange> Set(const std::string& tenant, const std::string& cluster_id) = 0;

  // Like Set, but also routes a tenant that has no route yet (change.previous_backend == nullopt,
  // so Restore removes the route again).
  virtual StatusOr<RouteChange> Add(const std::string& tenant, const std::string& cluster_id) = 0;

  // Polls until the proxy serves `cluster_id`'s backend for the tenant (Traefik: API shows the
  // router enabled, without error, on the new service, and the service enabled with a server UP;
  // HAProxy: `get map` resolves the host to the backend and the backend is UP). Traefik adds its
  // providersThrottleDuration to `deadline`. Failed with what the proxy showed last.
  virtual Status WaitLive(const std::string& tenant, const std::string& cluster_id,
                          std::chrono::milliseconds deadline) = 0;

  // Puts back change.previous_backend (removes the route if there was none). No-op if already
  // restored; Refused if the route now points at neither the previous nor the new backend.
  virtual Status Restore(const RouteChange& change) = 0;
};

// Builds the backend named by config.proxy.kind. BadInput for config the proxy cannot use (e.g. a
// backend name with characters a runtime command or YAML key cannot carry).
StatusOr<std::unique_ptr<RouteBackend>> MakeRouteBackend(const Config& config);

}  // namespace headshift
