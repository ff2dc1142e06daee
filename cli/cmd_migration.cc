// `headshift plan | migrate | status | resume | rollback`: one tenant's migration
// (playbooks/tenant_migration.h); `plan`/`migrate` with several tenants run them as one batch
// (playbooks/fleet_ops.h MigrateTenants: one restart per target). The journal is read directly for
// `status`.
#include <unistd.h>

#include <iostream>

#include "cli/command.h"
#include "cli/fleet_result.h"
#include "cli/progress.h"
#include "migrate/tenant_mover.h"
#include "playbooks/fleet_ops.h"
#include "playbooks/tenant_migration.h"

namespace headshift::cli {
namespace {

struct MigrationArgs {
  std::vector<std::string> tenants;  // plan/migrate: one (a single migration) or several (a batch)
  std::string to;
  std::string id;
  bool yes = false;
  bool allow_shared = false;
  bool no_target_restart = false;
  int64_t reset_rate = -1;
  std::string pacing;
  std::string until;
  std::string from;
};

CommandResult FromOutcome(const MigrationOutcome& out) {
  CommandResult r;
  r.status = out.status;
  r.json = out.report.ToJson();
  r.text = out.report.ToText();
  return r;
}

StatusOr<std::unique_ptr<TenantMigration>> OpenMigration(Context& ctx) {
  auto cfg = ctx.config();
  if (!cfg.ok()) return cfg.status();
  return TenantMigration::Open(**cfg);
}

MigrationOptions Options(Context& ctx, const MigrationArgs& a) {
  MigrationOptions o;
  o.allow_shared = a.allow_shared;
  auto cfg = ctx.config();
  if (cfg.ok() && (*cfg)->sessions.allow_shared) o.allow_shared = true;
  o.reset_rate = a.reset_rate;
  o.pacing = a.pacing;
  o.no_target_restart = a.no_target_restart;
  o.until = a.until;
  o.from = a.from;
  o.progress = StepProgress(ctx);
  o.detail = LineProgress(ctx);
  return o;
}

// Several tenants: the batch (FleetOps::MigrateTenants). Options that only make sense for one
// migration are refused before anything changes.
CommandResult Batch(Context& ctx, const MigrationArgs& a, bool dry_run) {
  if (!a.until.empty() || a.no_target_restart) {
    return Fail(Status::BadInput(std::string(a.until.empty() ? "--no-target-restart" : "--until") +
                                     " applies to one tenant's migration, not to a batch of " +
                                     std::to_string(a.tenants.size()),
                                 "run `headshift migrate TENANT --to " + a.to + "` for each tenant instead"));
  }
  auto cfg = ctx.config();
  if (!cfg.ok()) return Fail(cfg.status());
  auto fleet = FleetOps::Open(**cfg);
  if (!fleet.ok()) return Fail(fleet.status());
  FleetOptions o;
  o.dry_run = dry_run;
  o.allow_shared = a.allow_shared || (*cfg)->sessions.allow_shared;
  o.reset_rate = a.reset_rate;
  o.pacing = a.pacing;
  o.progress = LineProgress(ctx);
  if (!dry_run && !a.yes) {
    if (!isatty(STDIN_FILENO) || ctx.json()) {
      return Fail(Status::BadInput("migrate changes production state and needs confirmation",
                                   "pass --yes (run `headshift plan ... --to " + a.to + "` first to see what it will do)"));
    }
    FleetOptions dry = o;
    dry.dry_run = true;
    auto p = (*fleet)->MigrateTenants(a.tenants, a.to, dry);
    if (!p.ok()) return Fail(p.status());
    std::cerr << p->ToText() << "migrate " << a.tenants.size() << " tenants to cluster " << a.to << "? [y/N] "
              << std::flush;
    std::string answer;
    std::getline(std::cin, answer);
    if (answer != "y" && answer != "Y" && answer != "yes") return Fail(Status::Failed("not confirmed; nothing changed"));
  }
  return FromFleet((*fleet)->MigrateTenants(a.tenants, a.to, o));
}

const CommandRegistrar kMigration([](CLI::App& app, const auto& bind) {
  static MigrationArgs storage;  // CLI11 binds to storage that outlives parsing
  MigrationArgs* args = &storage;

  auto* plan = app.add_subcommand("plan", "dry run: rows, conflicts, route change, sessions to reset, risks");
  plan->add_option("tenants", args->tenants,
                   "tenant (headscale user name); several: the batch's plan (restarts per target and the expected "
                   "time without control of the target's own devices)")
      ->required();
  plan->add_option("--to", args->to, "target cluster id")->required();
  plan->add_flag("--allow-shared", args->allow_shared, "also reset client addresses shared with other tenants");
  plan->add_flag("--no-target-restart", args->no_target_restart,
                 "plan as migrate --no-target-restart would run: refused if the target's reload restarts it");
  bind(plan, [args](Context& ctx) {
    if (args->tenants.size() > 1) return Batch(ctx, *args, /*dry_run=*/true);
    auto mig = OpenMigration(ctx);
    if (!mig.ok()) return Fail(mig.status());
    return FromOutcome((*mig)->Plan(args->tenants.front(), args->to, Options(ctx, *args)));
  });

  auto* migrate = app.add_subcommand("migrate", "move a tenant to another cluster (resumable; prints the migration id); "
                                                 "several tenants: copied first, one restart of the target, then cut one by one");
  migrate->add_option("tenants", args->tenants, "tenant (headscale user name), or several")->required();
  migrate->add_option("--to", args->to, "target cluster id")->required();
  migrate->add_flag("--yes,-y", args->yes, "do not ask for confirmation");
  migrate->add_flag("--allow-shared", args->allow_shared, "also reset client addresses shared with other tenants");
  migrate->add_flag("--no-target-restart", args->no_target_restart,
                    "refuse (exit 3) if reloading the target would restart it and disconnect its other tenants");
  migrate->add_option("--reset-rate", args->reset_rate,
                      "cap of the session reset: at most N resets per second (0: unpaced, all at once; "
                      "default: sessions.reset_rate)")
      ->check(CLI::Range(int64_t{0}, int64_t{10000000}));
  migrate->add_option("--pacing", args->pacing,
                      "adaptive: waves that follow what the target absorbs (capped by --reset-rate); fixed: "
                      "--reset-rate per session host (default: sessions.pacing)")
      ->check(CLI::IsMember({"adaptive", "fixed"}));
  migrate->add_option("--until", args->until,
                      "stop after this step (state paused, exit 0); `headshift resume ID` continues")
      ->check(CLI::IsMember(MigrationSteps()));
  bind(migrate, [args](Context& ctx) {
    if (args->tenants.size() > 1) return Batch(ctx, *args, /*dry_run=*/false);
    const std::string& tenant = args->tenants.front();
    auto mig = OpenMigration(ctx);
    if (!mig.ok()) return Fail(mig.status());
    if (!args->yes) {
      if (!isatty(STDIN_FILENO) || ctx.json()) {
        return Fail(Status::BadInput("migrate changes production state and needs confirmation",
                                     "pass --yes (run `headshift plan " + tenant + " --to " + args->to +
                                         "` first to see what it will do)"));
      }
      MigrationOutcome p = (*mig)->Plan(tenant, args->to, Options(ctx, *args));
      std::cerr << p.report.ToText();
      if (!p.status.ok()) return FromOutcome(p);
      std::cerr << "migrate " << tenant << " to cluster " << args->to << "? [y/N] " << std::flush;
      std::string answer;
      std::getline(std::cin, answer);
      if (answer != "y" && answer != "Y" && answer != "yes") {
        return Fail(Status::Failed("not confirmed; nothing changed"));
      }
    }
    return FromOutcome((*mig)->Migrate(tenant, args->to, Options(ctx, *args)));
  });

  auto* resume = app.add_subcommand("resume", "continue a migration from its first unfinished step");
  resume->add_option("id", args->id, "migration id")->required();
  resume->add_option("--until", args->until, "stop again after this step (state paused)")
      ->check(CLI::IsMember(MigrationSteps()));
  resume->add_option("--from", args->from,
                     "continue at this step; the cut steps before it (snapshot_sessions, switch_route, route_live, "
                     "reset_sessions) are recorded as done outside headshift, by a fleet playbook on every proxy host")
      ->check(CLI::IsMember(MigrationSteps()));
  resume->add_option("--reset-rate", args->reset_rate, "as for migrate")
      ->check(CLI::Range(int64_t{0}, int64_t{10000000}));
  resume->add_option("--pacing", args->pacing, "as for migrate")->check(CLI::IsMember({"adaptive", "fixed"}));
  bind(resume, [args](Context& ctx) {
    auto mig = OpenMigration(ctx);
    if (!mig.ok()) return Fail(mig.status());
    return FromOutcome((*mig)->Resume(args->id, Options(ctx, *args)));
  });

  auto* rollback = app.add_subcommand("rollback", "undo a migration that is not complete");
  rollback->add_option("id", args->id, "migration id")->required();
  bind(rollback, [args](Context& ctx) {
    auto mig = OpenMigration(ctx);
    if (!mig.ok()) return Fail(mig.status());
    return FromOutcome((*mig)->Rollback(args->id, Options(ctx, *args)));
  });

  auto* status = app.add_subcommand("status", "journal state of one migration (ID), a tenant's, or all");
  status->add_option("what", args->id, "migration id or tenant name");
  bind(status, [args](Context& ctx) {
    auto cfg = ctx.config();
    if (!cfg.ok()) return Fail(cfg.status());
    auto mover = migrate::TenantMover::Open(**cfg);
    if (!mover.ok()) return Fail(mover.status());
    CommandResult r;
    std::vector<migrate::MigrationRecord> recs;
    if (args->id.rfind("m-", 0) == 0) {
      auto one = (*mover)->journal().Get(args->id);
      if (!one.ok()) return Fail(one.status());
      recs.push_back(*one);
    } else {
      auto all = (*mover)->journal().List(args->id.empty() ? std::nullopt : std::optional<std::string>(args->id));
      if (!all.ok()) return Fail(all.status());
      recs = *all;
    }
    nlohmann::json arr = nlohmann::json::array();
    std::string text;
    for (const auto& m : recs) {
      arr.push_back(m.ToJson());
      const auto* last = m.LastStep();
      text += m.id + "  " + m.tenant + "  " + m.from + " -> " + m.to + "  " + m.state +
              (last ? "  (last step " + last->step + ": " + last->state + ")" : "") + "\n";
      if (!args->id.empty() && args->id.rfind("m-", 0) == 0) {
        for (const auto& s : m.steps) {
          text += "    " + s.step + ": " + s.state + "  " + s.started_at + (s.finished_at.empty() ? "" : " .. " + s.finished_at) + "\n";
        }
      }
    }
    if (recs.empty()) text = "no migrations recorded\n";
    r.json = {{"migrations", arr}};
    r.text = text;
    return r;
  });
});

}  // namespace
}  // namespace headshift::cli
