#include "playbooks/fleet_ops.h"

#include <atomic>
#include <chrono>
#include <deque>
#include <mutex>
#include <random>
#include <thread>

#include <spdlog/spdlog.h>

#include "migrate/tenant_mover.h"
#include "playbooks/playbook.h"
#include "playbooks/tenant_migration.h"

namespace headshift {

using json = nlohmann::json;

namespace {

// A fleet's moves pause before the cut, which its playbook runs on every proxy host: a fleet operation
// here would leave each tenant paused half way.
Status RefuseFleet(const Config& config, const std::string& op) {
  if (config.proxy.kind != ProxyKind::kFleet) return Status::Ok();
  return Status::BadInput("proxy.kind fleet: `headshift " + op + "` cannot change the routes and sessions on the proxy hosts",
                          "run it through Ansible (playbooks/ansible: drain_cluster.yml, migrate_tenant.yml), or use --dry-run for the plan");
}

}  // namespace

struct FleetOps::Impl {
  Config config;
  std::unique_ptr<migrate::TenantMover> mover;

  // Load snapshot in placement's terms.
  Status Snapshot(std::vector<TenantLoad>* tenants, std::vector<ClusterSlot>* clusters) {
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

  // Runs `moves` with `concurrency` workers; stops starting new ones after a failure.
  void Execute(const std::vector<PlannedMove>& moves, int concurrency, const FleetOptions& opts, FleetReport& rep) {
    std::deque<PlannedMove> queue(moves.begin(), moves.end());
    std::mutex mu;
    std::atomic<bool> stop{false};
    size_t total = moves.size();
    std::atomic<size_t> finished{0};
    auto worker = [&] {
      std::unique_ptr<TenantMigration> mig;
      for (;;) {
        PlannedMove m;
        {
          std::lock_guard<std::mutex> lock(mu);
          if (queue.empty() || stop) return;
          m = queue.front();
          queue.pop_front();
        }
        if (!mig) {
          auto opened = TenantMigration::Open(config);
          if (!opened.ok()) {
            std::lock_guard<std::mutex> lock(mu);
            rep.failed.push_back({m, opened.status().message()});
            stop = true;
            return;
          }
          mig = std::move(opened).value();
        }
        MigrationOptions mo;
        mo.allow_shared = opts.allow_shared;
        auto t0 = std::chrono::steady_clock::now();
        MigrationOutcome out = mig->Migrate(m.tenant, m.to, mo);
        double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
        std::lock_guard<std::mutex> lock(mu);
        size_t n = ++finished;
        if (out.status.ok()) {
          rep.completed.push_back(out.report);
          if (opts.progress) {
            opts.progress("[" + std::to_string(n) + "/" + std::to_string(total) + "] " + m.tenant + " " + m.from +
                          " -> " + m.to + " complete in " + std::to_string(static_cast<int>(ms)) + " ms (" +
                          out.report.id + ")");
          }
        } else {
          rep.failed.push_back({m, out.status.message()});
          stop = true;
          if (opts.progress) {
            opts.progress("[" + std::to_string(n) + "/" + std::to_string(total) + "] " + m.tenant + " FAILED: " +
                          out.status.message());
          }
        }
      }
    };
    std::vector<std::thread> threads;
    for (int i = 0; i < std::max(1, concurrency); ++i) threads.emplace_back(worker);
    for (auto& t : threads) t.join();
    for (const auto& m : queue) rep.pending.push_back(m);
  }

  // ---- playbook runs: headshift_playbook_runs in the (first) journal database ----

  StatusOr<PgConn*> RunsDb() {
    auto homes = mover->databases().JournalHomes();
    auto conn = mover->databases().JournalConn(homes.empty() ? "" : homes.front());
    if (!conn.ok()) return conn.status();
    HS_RETURN_IF_ERROR((*conn)->ExecScript(
        "CREATE TABLE IF NOT EXISTS headshift_playbook_runs ("
        " id text PRIMARY KEY, playbook text NOT NULL, path text NOT NULL, digest text NOT NULL,"
        " next_step int NOT NULL DEFAULT 0, state text NOT NULL, started_at timestamptz NOT NULL DEFAULT now(),"
        " updated_at timestamptz NOT NULL DEFAULT now(), steps jsonb NOT NULL DEFAULT '[]')"));
    return *conn;
  }
};

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
  // Plan first (refusals change nothing), then cordon durably, then move.
  auto plan = PlanDrain(cluster, tenants, clusters, to);
  if (!plan.ok()) return plan.status();
  rep.plan = *plan;
  rep.extra["cluster"] = cluster;
  if (opts.dry_run) return rep;
  HS_RETURN_IF_ERROR(RefuseFleet(impl_->config, "drain"));
  HS_RETURN_IF_ERROR(impl_->mover->cordons().Cordon(cluster, "headshift drain"));
  if (opts.progress) opts.progress("cordoned cluster " + cluster + "; moving " + std::to_string(rep.plan.size()) + " tenant(s)");
  impl_->Execute(rep.plan, opts.concurrency, opts, rep);
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
  RebalancePlan plan = PlanRebalance(tenants, clusters, impl_->config.rebalance_tolerance,
                                     max_moves > 0 ? max_moves : 1000);
  rep.plan = plan.moves;
  json before = json::object(), after = json::object();
  for (const auto& [c, n] : plan.before) before[c] = n;
  for (const auto& [c, n] : plan.after) after[c] = n;
  rep.extra = {{"mean", plan.mean}, {"band", {plan.low, plan.high}}, {"before", before}, {"after", after},
               {"balanced_after", plan.balanced_after}};
  if (opts.dry_run || plan.moves.empty()) return rep;
  HS_RETURN_IF_ERROR(RefuseFleet(impl_->config, "rebalance"));
  impl_->Execute(rep.plan, 1, opts, rep);  // one at a time: each move changes the loads
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
  for (const auto& t : tenants) {
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
  if (opts.dry_run) return rep;
  HS_RETURN_IF_ERROR(RefuseFleet(impl_->config, "move"));
  size_t i = 0;
  // Canary: one at a time, then batches.
  for (; i < rep.plan.size() && static_cast<int>(i) < canary; ++i) {
    impl_->Execute({rep.plan[i]}, 1, opts, rep);
    if (!rep.failed.empty()) break;
  }
  while (rep.failed.empty() && i < rep.plan.size()) {
    size_t n = std::min(rep.plan.size() - i, static_cast<size_t>(canary > 0 ? batch : rep.plan.size()));
    std::vector<PlannedMove> wave(rep.plan.begin() + static_cast<long>(i), rep.plan.begin() + static_cast<long>(i + n));
    impl_->Execute(wave, canary > 0 ? batch : opts.concurrency, opts, rep);
    i += n;
  }
  for (; i < rep.plan.size(); ++i) rep.pending.push_back(rep.plan[i]);
  return rep;
}

StatusOr<PlaybookRunReport> FleetOps::Apply(const std::string& path, const FleetOptions& opts,
                                            const std::string& resume_id, bool confirm) {
  auto pb = LoadPlaybook(path, impl_->config);
  if (!pb.ok()) return pb.status();
  PlaybookRunReport run;
  run.playbook = pb->name;
  if (opts.dry_run) {
    run.state = "planned";
    for (size_t i = 0; i < pb->steps.size(); ++i) {
      const PlaybookStep& s = pb->steps[i];
      json step{{"index", i}, {"step", s.Describe()}, {"state", "planned"}};
      FleetOptions dry = opts;
      dry.dry_run = true;
      StatusOr<FleetReport> r = Status::Ok();
      if (s.kind == PlaybookStep::Kind::kDrain) r = Drain(s.cluster, s.drain_to, dry);
      else if (s.kind == PlaybookStep::Kind::kRebalance) r = Rebalance(s.max_moves, dry);
      else if (s.kind == PlaybookStep::Kind::kMigrate || s.kind == PlaybookStep::Kind::kCanary) {
        r = MoveTenants(s.tenants, s.to, 0, 1, dry);
      }
      if (s.kind != PlaybookStep::Kind::kPause && s.kind != PlaybookStep::Kind::kUncordon) {
        if (r.ok()) step["report"] = r->ToJson();
        else step["error"] = r.status().message();
      }
      run.steps.push_back(step);
    }
    return run;
  }
  // Before the run is recorded: a fleet refuses every step that moves a tenant, so refuse the whole run.
  HS_RETURN_IF_ERROR(RefuseFleet(impl_->config, "apply"));
  auto db = impl_->RunsDb();
  if (!db.ok()) return db.status();
  PgConn& conn = **db;
  int next = 0;
  json steps = json::array();
  if (resume_id.empty()) {
    std::random_device rd;
    char suffix[9];
    snprintf(suffix, sizeof suffix, "%08x", rd());
    run.run_id = "p-" + pb->name + "-" + suffix;
    auto ins = conn.Exec("INSERT INTO headshift_playbook_runs (id, playbook, path, digest, state) VALUES ($1,$2,$3,$4,'running')",
                         {run.run_id, pb->name, path, pb->digest});
    if (!ins.ok()) return ins.status();
  } else {
    auto r = conn.Exec("SELECT playbook, digest, next_step, state, steps::text FROM headshift_playbook_runs WHERE id = $1",
                       {resume_id});
    if (!r.ok()) return r.status();
    if (r->rows() == 0) return Status::BadInput("unknown playbook run '" + resume_id + "'");
    if (r->Get(0, 1) != pb->digest) {
      return Status::BadInput("playbook " + path + " changed since run " + resume_id + " started",
                              "resume with the unchanged file, or start a new run");
    }
    run.run_id = resume_id;
    next = std::stoi(r->Get(0, 2));
    steps = json::parse(r->Get(0, 4));
    if (r->Get(0, 3) == "complete") {
      run.state = "complete";
      run.next_step = next;
      for (const auto& s : steps) run.steps.push_back(s);
      return run;
    }
  }
  auto save = [&](const std::string& state) {
    (void)conn.Exec("UPDATE headshift_playbook_runs SET next_step = $2, state = $3, steps = $4::jsonb, updated_at = now() "
                    "WHERE id = $1",
                    {run.run_id, std::to_string(next), state, steps.dump()});
  };
  for (; next < static_cast<int>(pb->steps.size()); ++next) {
    const PlaybookStep& s = pb->steps[static_cast<size_t>(next)];
    if (opts.progress) opts.progress("step " + std::to_string(next) + ": " + s.Describe());
    json step{{"index", next}, {"step", s.Describe()}};
    if (s.kind == PlaybookStep::Kind::kPause) {
      // A pause passes only with --confirm on the resumed run that stopped here.
      if (!(confirm && !resume_id.empty())) {
        step["state"] = "paused";
        steps.push_back(step);
        save("paused");
        run.state = "paused";
        run.next_step = next;
        for (const auto& x : steps) run.steps.push_back(x);
        return Status::NeedsOperator("playbook paused at step " + std::to_string(next) + ": " + s.message,
                                     "when ready: headshift apply " + path + " --resume " + run.run_id + " --confirm");
      }
      confirm = false;  // one confirmation passes one pause
      step["state"] = "confirmed";
      steps.push_back(step);
      save("running");
      continue;
    }
    FleetOptions fo = opts;
    fo.allow_shared = s.allow_shared || opts.allow_shared;
    fo.concurrency = s.concurrency;
    StatusOr<FleetReport> r = Status::Ok();
    Status plain;
    switch (s.kind) {
      case PlaybookStep::Kind::kDrain: r = Drain(s.cluster, s.drain_to, fo); break;
      case PlaybookStep::Kind::kRebalance: r = Rebalance(s.max_moves, fo); break;
      case PlaybookStep::Kind::kMigrate: r = MoveTenants(s.tenants, s.to, 0, 1, fo); break;
      case PlaybookStep::Kind::kCanary: r = MoveTenants(s.tenants, s.to, s.canary, s.batch, fo); break;
      case PlaybookStep::Kind::kUncordon: plain = Uncordon(s.cluster); break;
      case PlaybookStep::Kind::kPause: break;
    }
    Status st = !r.ok() ? r.status() : plain;
    if (st.ok() && r.ok() && s.kind != PlaybookStep::Kind::kUncordon) {
      step["report"] = r->ToJson();
      if (!r->ok()) {
        st = Status::Failed("step " + std::to_string(next) + " (" + s.Describe() + ") did not finish: " +
                            std::to_string(r->failed.size()) + " failed, " + std::to_string(r->pending.size()) +
                            " pending");
      }
    }
    if (!st.ok()) {
      step["state"] = "failed";
      step["error"] = st.message();
      steps.push_back(step);
      save("failed");
      run.state = "failed";
      run.next_step = next;
      for (const auto& x : steps) run.steps.push_back(x);
      return Status(st).WithContext("playbook " + pb->name + " run " + run.run_id + " (resume with --resume " +
                                    run.run_id + ")");
    }
    step["state"] = "done";
    steps.push_back(step);
    save("running");
  }
  save("complete");
  run.state = "complete";
  run.next_step = next;
  for (const auto& x : steps) run.steps.push_back(x);
  return run;
}

}  // namespace headshift
