#include "playbooks/target_batch.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <deque>
#include <mutex>
#include <set>
#include <thread>

#include <spdlog/spdlog.h>

#include "playbooks/batch_plan.h"
#include "playbooks/batch_restart.h"
#include "playbooks/journal_details.h"
#include "playbooks/migration_env.h"
#include "playbooks/tenant_migration.h"

namespace headshift {

using json = nlohmann::json;

namespace {

using Clock = std::chrono::steady_clock;

int ElapsedMs(Clock::time_point t0) {
  return static_cast<int>(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
}

MigrationOptions MigOpts(const BatchOptions& o, const std::string& until) {
  MigrationOptions mo;
  mo.allow_shared = o.allow_shared;
  mo.reset_rate = o.reset_rate;
  mo.pacing = o.pacing;
  mo.batch = o.operation;
  mo.until = until;
  return mo;
}

// Runs `fn` over `moves` with `concurrency` workers, each with its own TenantMigration (opened on
// first use); once `fn` returns false no new move is started. Returns the moves never started.
// `fn` runs on the worker threads: it locks what it shares.
std::vector<PlannedMove> Pool(const Config& config, const std::vector<PlannedMove>& moves, int concurrency,
                              const std::function<bool(TenantMigration*, const Status&, const PlannedMove&)>& fn) {
  std::deque<PlannedMove> queue(moves.begin(), moves.end());
  std::mutex mu;
  std::atomic<bool> stop{false};
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
      Status opened = Status::Ok();
      if (!mig) {
        auto o = TenantMigration::Open(config);
        if (o.ok()) mig = std::move(o).value();
        else opened = o.status();
      }
      if (!fn(mig.get(), opened, m)) stop = true;
      if (!opened.ok()) return;
    }
  };
  std::vector<std::thread> threads;
  for (int i = 0; i < std::max(1, concurrency); ++i) threads.emplace_back(worker);
  for (auto& t : threads) t.join();
  return std::vector<PlannedMove>(queue.begin(), queue.end());
}

// Appends instead of `"[" + std::to_string(n)`: GCC 12 at -O3 reports a false -Wrestrict on the latter.
std::string Counter(size_t n, size_t total) {
  std::string s(1, '[');
  s.append(std::to_string(n)).append(1, '/').append(std::to_string(total)).append(1, ']');
  return s;
}

}  // namespace

struct TargetBatch::Impl {
  Config config;
  std::unique_ptr<MigrationEnv> env;
  std::unique_ptr<TenantMigration> mig;  // this thread's: adopted resumes and the cuts
  size_t total = 0;                      // moves of the current Run, for the progress counter
  size_t finished = 0;

  void Say(const BatchOptions& o, const std::string& line) {
    spdlog::info("batch: {}", line);
    if (o.progress) o.progress(line);
  }

  // One TenantMigration's outcome into the report (under the caller's lock).
  void Record(const PlannedMove& m, const MigrationOutcome& out, int ms, const BatchOptions& o, FleetReport& rep) {
    size_t n = ++finished;
    if (out.status.ok() && out.report.state == "paused") {  // proxy.kind fleet: stopped before its cut
      rep.paused_before_cut.push_back({m, out.report});
      Say(o, Counter(n, total) + " " + m.tenant + " " + m.from + " -> " + m.to + " ready in " + std::to_string(ms) +
                 " ms, paused before the cut (" + out.report.id + "): the proxy hosts run it");
    } else if (out.status.ok()) {
      rep.completed.push_back(out.report);
      Say(o, Counter(n, total) + " " + m.tenant + " " + m.from + " -> " + m.to + " complete in " + std::to_string(ms) +
                 " ms (" + out.report.id + ")");
    } else {
      rep.failed.push_back({m, out.status.message()});
      Say(o, Counter(n, total) + " " + m.tenant + " FAILED: " + out.status.message());
    }
  }

  // Target without a restart to share (or one tenant): each migration whole, as `migrate` does.
  bool RunEach(const std::vector<PlannedMove>& group, const std::map<std::string, std::string>& adopt,
               const BatchOptions& o, FleetReport& rep) {
    std::mutex mu;
    json reports = json::array();
    bool failed = false;
    auto left = Pool(config, group, o.concurrency, [&](TenantMigration* mig, const Status& opened, const PlannedMove& m) {
      if (!opened.ok()) {
        std::lock_guard<std::mutex> lock(mu);
        rep.failed.push_back({m, opened.message()});
        failed = true;
        return false;
      }
      auto t0 = Clock::now();
      auto it = adopt.find(m.tenant);
      MigrationOutcome out = it != adopt.end() ? mig->Resume(it->second, MigOpts(o, ""))
                                               : mig->Migrate(m.tenant, m.to, MigOpts(o, ""));
      std::lock_guard<std::mutex> lock(mu);
      if (out.report.target_restart && out.report.target_restart->reloaded) {
        json r = out.report.target_restart->ToJson();
        r["reason"] = "per_tenant";
        r["tenants_served"] = json::array({m.tenant});
        reports.push_back(r);
        if (out.report.target_restart->restarted) ++rep.target_restarts[m.to];
      }
      Record(m, out, ElapsedMs(t0), o, rep);
      if (!out.status.ok()) failed = true;
      return out.status.ok();
    });
    rep.pending.insert(rep.pending.end(), left.begin(), left.end());
    rep.target_restarts.emplace(group.front().to, 0);
    json& d = rep.target_restart_detail[group.front().to];
    d["restarts"] = rep.target_restarts[group.front().to];
    if (!d.contains("reports")) d["reports"] = json::array();
    for (auto& r : reports) d["reports"].push_back(std::move(r));
    return !failed && left.empty();
  }

  // Restart once for `tenants`; recorded in the report and, for the prepared ones, in their journal.
  Status Restart(const std::string& to, const std::vector<std::pair<PlannedMove, std::string>>& tenants,
                 const std::set<std::string>& moving, const std::string& reason, const BatchOptions& o,
                 FleetReport& rep) {
    std::vector<std::string> names;
    for (const auto& [m, id] : tenants) names.push_back(m.tenant);
    BatchRestartOutcome out;
    out.reason = reason;
    auto t0 = Clock::now();
    Status st = RestartTargetOnce(*env, to, names, moving, out);
    json& d = rep.target_restart_detail[to];
    if (!d.contains("reports")) d["reports"] = json::array();
    if (out.report.reloaded || !st.ok()) d["reports"].push_back(out.ToJson());
    if (out.report.restarted) ++rep.target_restarts[to];
    d["restarts"] = rep.target_restarts[to];
    if (!st.ok()) {
      Say(o, "cluster " + to + ": making it serve " + std::to_string(names.size()) + " tenant(s) FAILED: " + st.message());
      return st;
    }
    if (!out.report.reloaded) {
      if (reason == "batch") {
        Say(o, "cluster " + to + " already serves the node keys of " + std::to_string(names.size()) +
                   " tenant(s): not restarted");
      }
      return st;
    }
    Say(o, "cluster " + to + (out.report.restarted ? " restarted once" : " reloaded once") + " for " +
               std::to_string(names.size()) + " tenant(s) (" + reason + ") in " + std::to_string(ElapsedMs(t0)) +
               " ms: " + out.report.Describe());
    if (reason == "batch") {
      for (const auto& [m, id] : tenants) {  // kept with each migration: status shows it, plans read its rate
        auto rec = env->mover->journal().Get(id);
        if (rec.ok()) (void)env->mover->journal().SetState(*rec, "paused", {{"batch_restart", out.ToJson()}});
      }
    }
    return st;
  }

  bool RunShared(const std::string& to, const std::vector<PlannedMove>& group,
                 const std::map<std::string, std::string>& adopt, const BatchOptions& o, FleetReport& rep) {
    rep.target_restarts.emplace(to, 0);  // a canary's waves add up
    if (!rep.target_restart_detail.contains(to)) rep.target_restart_detail[to] = {{"restarts", 0}, {"reports", json::array()}};
    // 1. prepare: up to policy (or adopt a migration already paused there).
    std::vector<std::pair<PlannedMove, std::string>> prepared;
    std::vector<PlannedMove> fresh;
    for (const auto& m : group) {
      if (auto it = adopt.find(m.tenant); it != adopt.end()) {
        prepared.push_back({m, it->second});
        Say(o, m.tenant + ": continuing " + it->second + ", left paused by an earlier run (no second copy)");
      } else {
        fresh.push_back(m);
      }
    }
    Say(o, "cluster " + to + ": copying " + std::to_string(fresh.size()) + " tenant(s) up to policy before one restart");
    std::mutex mu;
    bool failed = false;
    auto left = Pool(config, fresh, o.concurrency, [&](TenantMigration* mig, const Status& opened, const PlannedMove& m) {
      if (!opened.ok()) {
        std::lock_guard<std::mutex> lock(mu);
        rep.failed.push_back({m, opened.message()});
        failed = true;
        return false;
      }
      auto t0 = Clock::now();
      MigrationOutcome out = mig->Migrate(m.tenant, m.to, MigOpts(o, "policy"));
      std::lock_guard<std::mutex> lock(mu);
      if (out.status.ok() && out.report.state == "paused") {
        prepared.push_back({m, out.report.id});
        Say(o, m.tenant + " " + m.from + " -> " + m.to + ": copied, verified, policy written in " +
                   std::to_string(ElapsedMs(t0)) + " ms (" + out.report.id + ", paused before the cut)");
        return true;
      }
      failed = true;
      Record(m, out, ElapsedMs(t0), o, rep);
      return false;
    });
    rep.pending.insert(rep.pending.end(), left.begin(), left.end());
    if (prepared.empty()) return !failed && left.empty();
    // Cut in plan order, whatever order the workers finished in.
    std::stable_sort(prepared.begin(), prepared.end(), [&](const auto& a, const auto& b) {
      auto pos = [&](const std::string& t) {
        return std::find_if(group.begin(), group.end(), [&](const PlannedMove& m) { return m.tenant == t; }) - group.begin();
      };
      return pos(a.first.tenant) < pos(b.first.tenant);
    });
    // 2. one restart for all of them.
    std::set<std::string> moving;
    for (const auto& [m, id] : prepared) moving.insert(m.tenant);
    if (!Restart(to, prepared, moving, "batch", o, rep).ok()) {
      rep.paused.insert(rep.paused.end(), prepared.begin(), prepared.end());
      return false;
    }
    // 3. cut tenant by tenant: each resume finds its keys served (no reload).
    std::vector<std::pair<PlannedMove, std::string>> cut;
    for (size_t i = 0; i < prepared.size(); ++i) {
      const auto& [m, id] = prepared[i];
      auto t0 = Clock::now();
      MigrationOutcome out = mig->Resume(id, MigOpts(o, ""));
      Record(m, out, ElapsedMs(t0), o, rep);
      if (out.status.ok()) {
        // A fleet's migration stops before its cut (its catch-up comes with the playbook's finish).
        if (out.report.state == "complete") cut.push_back(prepared[i]);
        continue;
      }
      failed = true;
      rep.paused.insert(rep.paused.end(), prepared.begin() + static_cast<long>(i) + 1, prepared.end());
      break;
    }
    // 4. devices registered on the source after their tenant's copy, caught up after the restart.
    if (!cut.empty() && !Restart(to, cut, {}, "late_devices", o, rep).ok()) failed = true;
    return !failed && left.empty();
  }
};

TargetBatch::TargetBatch(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
TargetBatch::~TargetBatch() = default;

StatusOr<std::unique_ptr<TargetBatch>> TargetBatch::Open(const Config& config) {
  auto impl = std::make_unique<Impl>();
  impl->config = config;
  auto env = MigrationEnv::Open(impl->config);
  if (!env.ok()) return env.status();
  impl->env = std::move(env).value();
  auto mig = TenantMigration::Open(impl->config);
  if (!mig.ok()) return mig.status();
  impl->mig = std::move(mig).value();
  return std::unique_ptr<TargetBatch>(new TargetBatch(std::move(impl)));
}

void TargetBatch::Run(const std::vector<PlannedMove>& moves, const std::map<std::string, std::string>& adopt,
                      const BatchOptions& opts, FleetReport& rep) {
  impl_->total = moves.size();
  impl_->finished = 0;
  bool stop = false;
  for (const auto& [to, group] : GroupByTarget(moves)) {
    if (stop) {
      rep.pending.insert(rep.pending.end(), group.begin(), group.end());
      continue;
    }
    const ClusterConfig* target = impl_->config.FindCluster(to);
    bool restart_shared = target && !target->reload_command.empty() && target->reload_drops_sessions;
    bool one_fresh = group.size() == 1 && !adopt.count(group.front().tenant);
    bool ok = restart_shared && !one_fresh ? impl_->RunShared(to, group, adopt, opts, rep)
                                           : impl_->RunEach(group, adopt, opts, rep);
    stop = !ok;
  }
}

void TargetBatch::Plan(const std::vector<PlannedMove>& moves, FleetReport& rep) {
  rep.target_restart_detail = TargetRestartPlan(*impl_->env, moves, rep.target_restarts);
}

StatusOr<std::vector<migrate::MigrationRecord>> TargetBatch::Continuable(bool batch_only) {
  auto all = impl_->env->mover->journal().List();
  if (!all.ok()) return all.status();
  bool fleet = impl_->config.proxy.kind == ProxyKind::kFleet;
  std::vector<migrate::MigrationRecord> out;
  for (auto& m : *all) {
    bool paused = m.state == "paused" && m.details.value("paused_after", "") == "policy";
    // A fleet's migration waiting for its cut (a batch's prepare, or one the playbook started): its
    // resume is a no-op that reports it again, so a rerun neither copies it again nor refuses it.
    if (fleet && m.state == "paused" && m.details.value("next_step", "") == "snapshot_sessions") paused = true;
    // A batch's migration whose process died (right after policy, before it could record the pause, or
    // later, during its cut): resuming continues it wherever it stopped.
    bool crashed = m.state == "running" && m.details.contains("batch");
    if (!paused && !crashed) continue;
    if (batch_only && !m.details.contains("batch")) continue;
    out.push_back(std::move(m));
  }
  return out;
}

}  // namespace headshift
