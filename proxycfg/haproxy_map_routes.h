// HaproxyMapRoutes: tenant routes in HAProxy, as entries "<host> <backend>" of the map used by
//   use_backend %[req.hdr(host),lower,map(<map_file>)]
// The host comes from proxy.haproxy.host_template (lowercased, as the `lower` converter does).
// A change goes to the running HAProxy first (`set map` / `add map` / `del map` over the runtime
// socket), is verified with `get map`, and is then written to the map file atomically (same mode
// and owner) so a reload keeps it. If the file cannot be written, the runtime change is undone.
// Only the tenant's line of the map file changes; every other byte stays as it was.
//
// Thread-safety: not thread-safe (see RouteBackend); processes serialise on the map directory.
#pragma once

#include <memory>

#include "common/config.h"
#include "proxycfg/haproxy_runtime_client.h"
#include "proxycfg/name_template.h"
#include "proxycfg/route_backend.h"

namespace headshift {

class HaproxyMapRoutes : public RouteBackend {
 public:
  // REQUIRES: config.proxy.kind == ProxyKind::kHaproxy. Copies what it needs from `config`.
  static StatusOr<std::unique_ptr<HaproxyMapRoutes>> Make(const Config& config);

  std::string Kind() const override { return "haproxy"; }
  StatusOr<std::optional<Route>> Get(const std::string& tenant) override;
  StatusOr<std::vector<Route>> List() override;
  Status CheckOwnership(const std::string& tenant) override;
  StatusOr<RouteChange> Set(const std::string& tenant, const std::string& cluster_id) override;
  StatusOr<RouteChange> Add(const std::string& tenant, const std::string& cluster_id) override;
  Status WaitLive(const std::string& tenant, const std::string& cluster_id, std::chrono::milliseconds deadline) override;
  Status Restore(const RouteChange& change) override;

 private:
  explicit HaproxyMapRoutes(const Config& config);

  StatusOr<RouteChange> SetRoute(const std::string& tenant, const std::string& cluster_id, bool allow_add);
  // Brings HAProxy's memory and the map file to `want` for `host` (nullopt: no entry), given the
  // value HAProxy has now. Undoes the runtime change if the file cannot be written.
  Status Converge(const std::string& host, const std::optional<std::string>& live,
                  const std::optional<std::string>& want, const std::string& file_text);
  Status CheckDuplicates(const std::string& host, const std::string& file_text);
  std::string ClusterOf(const std::string& backend) const;

  Config config_;
  HaproxyConfig haproxy_;
  NameTemplate host_template_;
  HaproxyRuntimeClient runtime_;
};

}  // namespace headshift
