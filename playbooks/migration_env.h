// MigrationEnv: what every step of a migration works with — the config, the row mover (database,
// journal, tenant lock), the route backend, the clusters' API keys and the session hosts. Opened
// once per TenantMigration and shared by its runs; steps reach it through MigrationRun::env.
//
// Ownership: owns the mover and the route backend. `route` is null with proxy.kind fleet (the
// routes live on the fleet's proxy hosts, not here).
// Thread-safety: one thread at a time, except api_keys (thread-safe) and Control(), which
// preflight's checks call from several threads.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "common/config.h"
#include "common/status.h"
#include "controlplane/headscale_client.h"
#include "dataplane/sessions.h"
#include "migrate/tenant_mover.h"
#include "playbooks/api_keys.h"
#include "proxycfg/route_backend.h"

namespace headshift {

struct MigrationEnv {
  explicit MigrationEnv(const Config& c) : config(c), api_keys(config) {}
  MigrationEnv(const MigrationEnv&) = delete;
  MigrationEnv& operator=(const MigrationEnv&) = delete;

  // BadInput for config the modules cannot use (missing secrets, bad proxy settings).
  static StatusOr<std::unique_ptr<MigrationEnv>> Open(const Config& config);

  // A client of `cluster`'s headscale API (with its API key).
  StatusOr<std::unique_ptr<HeadscaleClient>> Control(const std::string& cluster);
  // The configured session hosts.
  std::vector<SessionHost> Hosts() const;
  // Validates tenant and target and finds the tenant's source cluster. BadInput before anything is
  // touched (empty or unknown tenant, unknown target, tenant already there).
  StatusOr<std::string> Source(const std::string& tenant, const std::string& to);

  const Config config;
  ApiKeys api_keys;
  std::unique_ptr<migrate::TenantMover> mover;
  std::unique_ptr<RouteBackend> route;  // null with proxy.kind fleet
};

}  // namespace headshift
