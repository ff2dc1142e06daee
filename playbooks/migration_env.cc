#include "playbooks/migration_env.h"

namespace headshift {

StatusOr<std::unique_ptr<MigrationEnv>> MigrationEnv::Open(const Config& config) {
  auto env = std::make_unique<MigrationEnv>(config);
  auto mover = migrate::TenantMover::Open(env->config);
  if (!mover.ok()) return mover.status();
  env->mover = std::move(mover).value();
  if (env->config.proxy.kind != ProxyKind::kFleet) {  // fleet: no route on this host (route stays null)
    auto route = MakeRouteBackend(env->config);
    if (!route.ok()) return route.status();
    env->route = std::move(route).value();
  }
  return env;
}

StatusOr<std::unique_ptr<HeadscaleClient>> MigrationEnv::Control(const std::string& cluster) {
  auto key = api_keys.Get(cluster);
  if (!key.ok()) return key.status();
  const ClusterConfig* c = config.FindCluster(cluster);
  return std::make_unique<HeadscaleClient>(c->control_url, *key, config.timeouts.http_ms);
}

std::vector<SessionHost> MigrationEnv::Hosts() const {
  std::vector<SessionHost> out;
  for (const auto& h : config.sessions.hosts) out.push_back(SessionHost::FromConfig(h));
  return out;
}

StatusOr<std::string> MigrationEnv::Source(const std::string& tenant, const std::string& to) {
  if (tenant.empty()) return Status::BadInput("empty tenant name");
  if (!config.FindCluster(to)) {
    return Status::BadInput("unknown target cluster '" + to + "'", "use one of: " + config.ClusterIds());
  }
  auto where = mover->LocateTenant(tenant);
  if (!where.ok()) return where.status();
  if (!where->has_value()) {
    return Status::BadInput("unknown tenant '" + tenant + "': no cluster holds a user of that name",
                            "check the name with `headshift route show` or headscale's `users list`");
  }
  if (**where == to) {
    return Status::BadInput("tenant '" + tenant + "' is already on cluster " + to, "pick another target cluster");
  }
  return **where;
}

}  // namespace headshift
