#include "playbooks/tenant_migration.h"

#include <spdlog/spdlog.h>

#include "dataplane/cidr.h"
#include "playbooks/client_selection.h"
#include "playbooks/journal_details.h"
#include "playbooks/journal_replay.h"
#include "playbooks/migration_env.h"
#include "playbooks/migration_run.h"
#include "playbooks/step_runner.h"
#include "playbooks/steps/preflight.h"
#include "playbooks/steps/steps.h"

namespace headshift {

using json = nlohmann::json;

// The services every run uses, and the runner over the step table (playbooks/steps/step_table.cc).
struct TenantMigration::Impl {
  std::unique_ptr<MigrationEnv> env;
  StepRunner runner{steps::Table()};
};

TenantMigration::TenantMigration(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
TenantMigration::~TenantMigration() = default;

StatusOr<std::unique_ptr<TenantMigration>> TenantMigration::Open(const Config& config) {
  auto env = MigrationEnv::Open(config);
  if (!env.ok()) return env.status();
  auto impl = std::make_unique<Impl>();
  impl->env = std::move(env).value();
  return std::unique_ptr<TenantMigration>(new TenantMigration(std::move(impl)));
}

MigrationOutcome TenantMigration::Plan(const std::string& tenant, const std::string& to, const MigrationOptions& opts) {
  MigrationOutcome out;
  MigrationReport& rep = out.report;
  rep.tenant = tenant;
  rep.to = to;
  rep.state = "planned";
  auto t0 = MigrationClock::now();
  auto from = impl_->env->Source(tenant, to);
  if (!from.ok()) {
    out.status = from.status();
    return out;
  }
  rep.from = *from;
  json online;
  Status pre = steps::RunPreflight(*impl_->env, tenant, *from, to, rep, /*for_plan=*/true, &online, opts);
  // The sessions a migration would reset now, per host (read-only).
  auto sel = SelectClients(*impl_->env->mover, impl_->env->config, tenant, *from, opts.allow_shared);
  if (sel.ok()) {
    rep.client_addresses = sel->selected;
    rep.shared_addresses = sel->shared;
    rep.shared_reset = opts.allow_shared && !sel->shared.empty();
    if (!sel->shared.empty() && !opts.allow_shared) {
      rep.risks.push_back({"shared_addresses",
                           std::to_string(sel->shared.size()) +
                               " client address(es) are shared with other tenants: their sessions are spared, so "
                               "those devices move only at their next reconnect (--allow-shared resets them, with "
                               "collateral)",
                           {{"addresses", static_cast<int64_t>(sel->shared.size())}}});
    }
    if (sel->selected.empty()) {
      rep.risks.push_back({"no_client_addresses", "no public client address known for " + tenant + ": no session would be reset"});
    } else if (auto cidrs = ParseCidrList(sel->selected); cidrs.ok()) {
      for (const auto& h : impl_->env->Hosts()) {
        auto table = SessionTable::Open(h, SessionTable::Access::kReadOnly);
        if (!table.ok()) continue;  // reported by preflight
        SessionSelector s;
        s.ports = h.ports;
        s.clients = *cidrs;
        auto listed = (*table)->List(s);
        if (listed.ok()) {
          rep.sessions_by_host[h.name] = {{"would_reset", listed->selected}};
          rep.sessions_selected += static_cast<int64_t>(listed->selected);
        }
      }
    }
  } else {
    rep.warnings.push_back("client addresses: " + sel.status().message());
  }
  rep.timings_ms["total"] = MsSince(t0);
  if (!pre.ok()) {
    rep.state = "would_refuse";
    out.status = pre;
  }
  return out;
}

MigrationOutcome TenantMigration::Migrate(const std::string& tenant, const std::string& to,
                                          const MigrationOptions& opts) {
  MigrationOutcome out;
  MigrationRun run(*impl_->env, opts);
  run.rep.tenant = tenant;
  run.rep.to = to;
  // One unfinished migration per tenant: a paused or stopped one is resumed or rolled back, never
  // overtaken by a new one (its rows may be on both clusters).
  if (auto earlier = impl_->env->mover->journal().List(tenant); earlier.ok()) {
    for (const auto& m : *earlier) {
      if (m.state == "paused" || m.state == "needs_operator") {
        out.status = Status::Refused("tenant " + tenant + " has an unfinished migration " + m.id + " (" + m.from +
                                         " -> " + m.to + ", " + m.state + ")",
                                     "continue it with `headshift resume " + m.id + "` or undo it with `headshift rollback " +
                                         m.id + "`");
        out.report = run.rep;
        return out;
      }
    }
  }
  auto from = impl_->env->Source(tenant, to);
  if (!from.ok()) {
    out.status = from.status();
    out.report = run.rep;
    return out;
  }
  run.rep.from = *from;
  std::string id = migrate::Journal::NewMigrationId();
  run.rep.id = id;
  auto lock = impl_->env->mover->Lock(tenant, *from, to, id);
  if (!lock.ok()) {
    out.status = lock.status();
    out.report = run.rep;
    return out;
  }
  run.lock = std::move(lock).value();
  if (opts.progress) opts.progress(tenant, "preflight", false, 0);
  auto t_pre = MigrationClock::now();
  json online;
  Status pre = steps::RunPreflight(*impl_->env, tenant, *from, to, run.rep, /*for_plan=*/false, &online, opts);
  double pre_ms = MsSince(t_pre);
  run.rep.timings_ms["preflight"] = pre_ms;
  if (!pre.ok()) {
    run.rep.state = "refused";
    out.status = pre;
    out.report = run.rep;
    return out;
  }
  if (opts.progress) opts.progress(tenant, "preflight", true, pre_ms);
  // First write: the journal.
  json created{{"layout", run.rep.layout},
               {"allow_shared", opts.allow_shared},
               {"no_target_restart", opts.no_target_restart}};
  if (!opts.batch.empty()) created["batch"] = opts.batch;
  auto rec = impl_->env->mover->journal().Create(tenant, *from, to, id, created);
  if (!rec.ok()) {
    out.status = rec.status();
    out.report = run.rep;
    return out;
  }
  run.rec = *rec;
  run.ref = {id, tenant, *from, to};
  Status st = impl_->runner.RecordBeforeJournal(run, "preflight", steps::PreflightDetails(run.rep, online, pre_ms));
  if (st.ok()) {
    run.rep.state = "running";
    run.rep.target_restart.reset();  // preflight's estimate; target_ready reports what happened
    st = impl_->runner.RunFrom(run, impl_->runner.IndexOf("copy"));
  }
  run.rep.timings_ms["total"] = MsSince(run.t0);
  out.status = st;
  out.report = run.rep;
  return out;
}

MigrationOutcome TenantMigration::Resume(const std::string& id, const MigrationOptions& opts) {
  MigrationOutcome out;
  MigrationRun run(*impl_->env, opts);
  out.status = LoadRunFromJournal(id, run);
  if (out.status.ok() && run.rec.state != "complete" && run.rec.state != "rolled_back") {
    out.status = impl_->runner.TakeLock(run);
    if (out.status.ok()) {
      out.status = impl_->runner.Resume(run);
      run.rep.timings_ms["total"] = MsSince(run.t0);
    }
  }  // else: complete or rolled back already: converged, nothing to do
  out.report = run.rep;
  return out;
}

MigrationOutcome TenantMigration::Rollback(const std::string& id, const MigrationOptions& opts) {
  MigrationOutcome out;
  MigrationRun run(*impl_->env, opts);
  out.status = LoadRunFromJournal(id, run);
  if (!out.status.ok() || run.rec.state == "rolled_back") {
    out.report = run.rep;
    return out;
  }
  if (run.rec.state == "complete" || StepDone(run.rec, "complete")) {
    out.report = run.rep;
    out.status = Status::Refused("migration " + id + " is complete; it cannot be rolled back",
                                 "move the tenant back with `headshift migrate " + run.rec.tenant + " --to " +
                                     run.rec.from + "`");
    return out;
  }
  out.status = impl_->runner.TakeLock(run);
  if (out.status.ok()) {
    out.status = impl_->runner.Rollback(run, "operator requested rollback");
    run.rep.timings_ms["total"] = MsSince(run.t0);
  }
  out.report = run.rep;
  return out;
}

}  // namespace headshift
