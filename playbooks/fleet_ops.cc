#include "playbooks/fleet_ops.h"

#include <algorithm>
#include <set>

#include <spdlog/spdlog.h>

#include "playbooks/fleet_ops_impl.h"

namespace headshift {

using json = nlohmann::json;

Status RefuseFleet(const Config& config, const std::string& op) {
  if (config.proxy.kind != ProxyKind::kFleet) return Status::Ok();
  return Status::BadInput("proxy.kind fleet: `headshift " + op + "` cannot change the routes and sessions on the proxy hosts",
                          "run it through Ansible (playbooks/ansible: drain_cluster.yml, migrate_tenant.yml), or use --dry-run for the plan");
}

Status FleetOps::Impl::Snapshot(std::vector<TenantLoad>* tenants, std::vector<ClusterSlot>* clusters) {
  auto load = mover->Load();
  if (!load.ok()) return load.status();
  auto cordons = mover->cordons().All();
  if (!cordons.ok()) return cordons.status();
  for (const auto& c : config.clusters) {
    bool cordoned = cordons->count(c.id) && cordons->at(c.id).cordoned;
    clusters->push_back({c.id, c.capacity, cordoned});
  }
  for (const auto& [cl, per_tenant] : load->devices) {
    for (const auto& [t, devices] : per_tenant) {
      TenantLoad tl{t, cl, devices, {}};
      if (auto it = config.tenants.find(t); it != config.tenants.end()) tl.allowed_clusters = it->second.allowed_clusters;
      tenants->push_back(tl);
    }
  }
  return Status::Ok();
}

StatusOr<TargetBatch*> FleetOps::Impl::Batch() {
  if (!batch) {
    auto b = TargetBatch::Open(config);
    if (!b.ok()) return b.status();
    batch = std::move(b).value();
  }
  return batch.get();
}

void FleetOps::Impl::Run(const std::vector<PlannedMove>& moves, const std::map<std::string, std::string>& adopt,
                         int concurrency, const FleetOptions& opts, FleetReport& rep) {
  BatchOptions bo;
  bo.operation = rep.operation;
  bo.concurrency = concurrency;
  bo.allow_shared = opts.allow_shared;
  bo.reset_rate = opts.reset_rate;
  bo.pacing = opts.pacing;
  bo.progress = opts.progress;
  batch->Run(moves, adopt, bo, rep);
}

namespace {

// Paused-at-policy migrations (a stopped or crashed batch) that `keep` selects become moves (first in
// the plan) and adoptions; their tenants leave the snapshot except on their target (where their rows
// already count as load), so nothing plans them twice.
void Adopt(const std::vector<migrate::MigrationRecord>& paused, const std::function<bool(const migrate::MigrationRecord&)>& keep,
           std::vector<TenantLoad>& tenants, std::vector<PlannedMove>& moves, std::map<std::string, std::string>& adopt) {
  for (const auto& m : paused) {
    if (adopt.count(m.tenant) || !keep(m)) continue;
    int64_t devices = 0;
    for (const auto& t : tenants) {
      if (t.tenant == m.tenant && t.cluster == m.from) devices = t.devices;
    }
    moves.push_back({m.tenant, m.from, m.to, devices});
    adopt[m.tenant] = m.id;
  }
  std::map<std::string, std::string> to;
  for (const auto& m : moves) to[m.tenant] = m.to;
  std::erase_if(tenants, [&](const TenantLoad& t) { return adopt.count(t.tenant) && t.cluster != to[t.tenant]; });
}

}  // namespace

FleetOps::FleetOps(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
FleetOps::~FleetOps() = default;

StatusOr<std::unique_ptr<FleetOps>> FleetOps::Open(const Config& config) {
  auto impl = std::make_unique<Impl>();
  impl->config = config;
  auto mover = migrate::TenantMover::Open(impl->config);
  if (!mover.ok()) return mover.status();
  impl->mover = std::move(mover).value();
  return std::unique_ptr<FleetOps>(new FleetOps(std::move(impl)));
}

StatusOr<FleetReport> FleetOps::Drain(const std::string& cluster, const std::vector<std::string>& to,
                                      const FleetOptions& opts) {
  if (!impl_->config.FindCluster(cluster)) {
    return Status::BadInput("unknown cluster '" + cluster + "'", "use one of: " + impl_->config.ClusterIds());
  }
  FleetReport rep;
  rep.operation = "drain";
  std::vector<TenantLoad> tenants;
  std::vector<ClusterSlot> clusters;
  HS_RETURN_IF_ERROR(impl_->Snapshot(&tenants, &clusters));
  // A rerun continues the migrations off `cluster` an earlier run left paused at policy.
  auto batch = impl_->Batch();
  if (!batch.ok()) return batch.status();
  auto paused = (*batch)->PausedAtPolicy(/*batch_only=*/false);
  if (!paused.ok()) return paused.status();
  std::map<std::string, std::string> adopt;
  Adopt(*paused, [&](const migrate::MigrationRecord& m) { return m.from == cluster; }, tenants, rep.plan, adopt);
  // Plan first (refusals change nothing), then cordon durably, then move.
  auto plan = PlanDrain(cluster, tenants, clusters, to);
  if (!plan.ok()) return plan.status();
  rep.plan.insert(rep.plan.end(), plan->begin(), plan->end());
  rep.extra["cluster"] = cluster;
  if (opts.dry_run) {
    (*batch)->Plan(rep.plan, rep);
    return rep;
  }
  HS_RETURN_IF_ERROR(RefuseFleet(impl_->config, "drain"));
  HS_RETURN_IF_ERROR(impl_->mover->cordons().Cordon(cluster, "headshift drain"));
  if (opts.progress) opts.progress("cordoned cluster " + cluster + "; moving " + std::to_string(rep.plan.size()) + " tenant(s)");
  impl_->Run(rep.plan, adopt, opts.concurrency, opts, rep);
  return rep;
}

Status FleetOps::Cordon(const std::string& cluster, const std::string& reason) {
  if (!impl_->config.FindCluster(cluster)) {
    return Status::BadInput("unknown cluster '" + cluster + "'", "use one of: " + impl_->config.ClusterIds());
  }
  return impl_->mover->cordons().Cordon(cluster, reason);
}

Status FleetOps::Uncordon(const std::string& cluster) {
  if (!impl_->config.FindCluster(cluster)) {
    return Status::BadInput("unknown cluster '" + cluster + "'", "use one of: " + impl_->config.ClusterIds());
  }
  return impl_->mover->cordons().Uncordon(cluster);
}

StatusOr<FleetReport> FleetOps::Rebalance(int max_moves, const FleetOptions& opts) {
  FleetReport rep;
  rep.operation = "rebalance";
  std::vector<TenantLoad> tenants;
  std::vector<ClusterSlot> clusters;
  HS_RETURN_IF_ERROR(impl_->Snapshot(&tenants, &clusters));
  auto batch = impl_->Batch();
  if (!batch.ok()) return batch.status();
  auto paused = (*batch)->PausedAtPolicy(/*batch_only=*/true);
  if (!paused.ok()) return paused.status();
  std::map<std::string, std::string> adopt;
  Adopt(*paused, [](const migrate::MigrationRecord& m) { return m.details.value("batch", "") == "rebalance"; }, tenants,
        rep.plan, adopt);
  RebalancePlan plan = PlanRebalance(tenants, clusters, impl_->config.rebalance_tolerance,
                                     max_moves > 0 ? max_moves : 1000);
  rep.plan.insert(rep.plan.end(), plan.moves.begin(), plan.moves.end());
  json before = json::object(), after = json::object();
  for (const auto& [c, n] : plan.before) before[c] = n;
  for (const auto& [c, n] : plan.after) after[c] = n;
  rep.extra = {{"mean", plan.mean}, {"band", {plan.low, plan.high}}, {"before", before}, {"after", after},
               {"balanced_after", plan.balanced_after}};
  if (opts.dry_run) (*batch)->Plan(rep.plan, rep);
  if (opts.dry_run || rep.plan.empty()) return rep;
  HS_RETURN_IF_ERROR(RefuseFleet(impl_->config, "rebalance"));
  impl_->Run(rep.plan, adopt, 1, opts, rep);  // one copy at a time: each move changes the loads
  return rep;
}

StatusOr<FleetReport> FleetOps::MoveTenants(const std::vector<std::string>& tenants, const std::string& to, int canary,
                                            int batch, const FleetOptions& opts) {
  FleetReport rep;
  rep.operation = "move";
  if (!impl_->config.FindCluster(to)) {
    return Status::BadInput("unknown cluster '" + to + "'", "use one of: " + impl_->config.ClusterIds());
  }
  auto load = impl_->mover->Load();
  if (!load.ok()) return load.status();
  auto runner = impl_->Batch();
  if (!runner.ok()) return runner.status();
  auto paused = (*runner)->PausedAtPolicy(/*batch_only=*/false);
  if (!paused.ok()) return paused.status();
  std::map<std::string, std::string> adopt;
  for (const auto& t : tenants) {
    // Paused at policy on its way to `to` (an earlier run of this step): continued, not copied again.
    auto p = std::find_if(paused->begin(), paused->end(),
                          [&](const migrate::MigrationRecord& m) { return m.tenant == t && m.to == to; });
    if (p != paused->end()) {
      int64_t devices = 0;
      if (load->devices.count(p->from) && load->devices.at(p->from).count(t)) devices = load->devices.at(p->from).at(t);
      rep.plan.push_back({t, p->from, to, devices});
      adopt[t] = p->id;
      continue;
    }
    auto where = impl_->mover->LocateTenant(t);
    if (!where.ok()) return where.status();
    if (!where->has_value()) return Status::BadInput("unknown tenant '" + t + "'");
    if (**where == to) {
      rep.skipped.push_back(t + " (already on " + to + ")");
      continue;
    }
    int64_t devices = 0;
    if (load->devices.count(**where) && load->devices.at(**where).count(t)) devices = load->devices.at(**where).at(t);
    rep.plan.push_back({t, **where, to, devices});
  }
  if (opts.dry_run) {
    (*runner)->Plan(rep.plan, rep);
    return rep;
  }
  HS_RETURN_IF_ERROR(RefuseFleet(impl_->config, "move"));
  size_t i = 0;
  // Canary: one at a time (each its own restart), then batches (one restart per target per batch).
  for (; i < rep.plan.size() && static_cast<int>(i) < canary; ++i) {
    impl_->Run({rep.plan[i]}, adopt, 1, opts, rep);
    if (!rep.ok()) break;
  }
  while (rep.ok() && i < rep.plan.size()) {
    size_t n = std::min(rep.plan.size() - i, static_cast<size_t>(canary > 0 ? batch : rep.plan.size()));
    std::vector<PlannedMove> wave(rep.plan.begin() + static_cast<long>(i), rep.plan.begin() + static_cast<long>(i + n));
    impl_->Run(wave, adopt, canary > 0 ? batch : opts.concurrency, opts, rep);
    i += n;
  }
  for (; i < rep.plan.size(); ++i) rep.pending.push_back(rep.plan[i]);
  return rep;
}

StatusOr<FleetReport> FleetOps::MigrateTenants(const std::vector<std::string>& tenants, const std::string& to,
                                               const FleetOptions& opts) {
  if (!impl_->config.FindCluster(to)) {
    return Status::BadInput("unknown target cluster '" + to + "'", "use one of: " + impl_->config.ClusterIds());
  }
  // Every problem at once, before anything changes.
  std::vector<std::string> bad, refused;
  std::set<std::string> seen;
  auto batch = impl_->Batch();
  if (!batch.ok()) return batch.status();
  auto paused = (*batch)->PausedAtPolicy(/*batch_only=*/false);
  if (!paused.ok()) return paused.status();
  auto journal = impl_->mover->journal().List();
  if (!journal.ok()) return journal.status();
  for (const auto& t : tenants) {
    if (!seen.insert(t).second) {
      bad.push_back("tenant '" + t + "' is listed more than once");
      continue;
    }
    bool resumable = std::any_of(paused->begin(), paused->end(),
                                 [&](const migrate::MigrationRecord& m) { return m.tenant == t && m.to == to; });
    if (resumable) continue;
    for (const auto& m : *journal) {
      if (m.tenant == t && (m.state == "paused" || m.state == "needs_operator")) {
        refused.push_back("tenant " + t + " has an unfinished migration " + m.id + " (" + m.from + " -> " + m.to + ", " +
                          m.state + "): continue it with `headshift resume " + m.id + "` or undo it with "
                          "`headshift rollback " + m.id + "`");
        break;
      }
    }
    auto where = impl_->mover->LocateTenant(t);
    if (!where.ok()) return where.status();
    if (!where->has_value()) {
      bad.push_back("unknown tenant '" + t + "': no cluster holds a user of that name");
    } else if (**where == to) {
      bad.push_back("tenant '" + t + "' is already on cluster " + to);
    }
  }
  auto joined = [](const std::vector<std::string>& v) {
    std::string s;
    for (const auto& x : v) s += (s.empty() ? "" : "; ") + x;
    return s;
  };
  if (!bad.empty()) {
    return Status::BadInput(joined(bad), "list each tenant once, by its headscale user name, and only tenants not on "
                                         "cluster " + to + " (nothing was changed)");
  }
  if (!refused.empty()) return Status::Refused(joined(refused));
  auto rep = MoveTenants(tenants, to, 0, 1, opts);
  if (rep.ok()) rep->operation = "migrate";
  return rep;
}

}  // namespace headshift
