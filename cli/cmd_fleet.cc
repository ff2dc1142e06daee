// `headshift drain | uncordon | rebalance | apply`: many tenants (playbooks/fleet_ops.h).
#include "cli/command.h"
#include "cli/fleet_result.h"
#include "cli/progress.h"
#include "playbooks/fleet_ops.h"

namespace headshift::cli {
namespace {

struct FleetArgs {
  std::string cluster;
  std::vector<std::string> to;
  int concurrency = 1;
  bool dry_run = false;
  int max_moves = 0;
  bool allow_shared = false;
  std::string playbook;
  std::string resume;
  bool confirm = false;
  std::string reason;
  int64_t reset_rate = -1;
  std::string pacing;
};

StatusOr<std::unique_ptr<FleetOps>> OpenFleet(Context& ctx) {
  auto cfg = ctx.config();
  if (!cfg.ok()) return cfg.status();
  return FleetOps::Open(**cfg);
}

FleetOptions Options(Context& ctx, const FleetArgs& a) {
  FleetOptions o;
  o.concurrency = a.concurrency;
  o.dry_run = a.dry_run;
  o.allow_shared = a.allow_shared;
  o.reset_rate = a.reset_rate;
  o.pacing = a.pacing;
  o.progress = LineProgress(ctx);
  return o;
}

const CommandRegistrar kFleet([](CLI::App& app, const auto& bind) {
  static FleetArgs storage;  // CLI11 binds to storage that outlives parsing
  FleetArgs* a = &storage;

  auto* drain = app.add_subcommand("drain", "cordon a cluster and move all its tenants away");
  drain->add_option("cluster", a->cluster, "cluster id to drain")->required();
  drain->add_option("--to", a->to, "allowed target clusters (comma-separated)")->delimiter(',');
  drain->add_option("--concurrency", a->concurrency,
                    "tenants moved at once (copied at once, then cut one at a time, when a target's restart is shared)")->check(CLI::Range(1, 64));
  drain->add_flag("--dry-run", a->dry_run, "print the plan only");
  drain->add_flag("--allow-shared", a->allow_shared, "also reset client addresses shared with other tenants");
  drain->add_option("--reset-rate", a->reset_rate, "cap on session resets per second (0 = unpaced; default: sessions.reset_rate)")
      ->check(CLI::Range(int64_t{0}, int64_t{1000000}));
  drain->add_option("--pacing", a->pacing, "adaptive (waves follow what the target absorbs) or fixed (default: sessions.pacing)")
      ->check(CLI::IsMember({"adaptive", "fixed"}));
  bind(drain, [a](Context& ctx) {
    auto f = OpenFleet(ctx);
    if (!f.ok()) return Fail(f.status());
    return FromFleet((*f)->Drain(a->cluster, a->to, Options(ctx, *a)));
  });

  auto* cordon = app.add_subcommand("cordon", "let a cluster receive no new tenants (drain's first step, alone)");
  cordon->add_option("cluster", a->cluster, "cluster id")->required();
  cordon->add_option("--reason", a->reason, "why (kept with the cordon)")->default_val("headshift cordon");
  bind(cordon, [a](Context& ctx) {
    auto f = OpenFleet(ctx);
    if (!f.ok()) return Fail(f.status());
    Status st = (*f)->Cordon(a->cluster, a->reason);
    if (!st.ok()) return Fail(st);
    CommandResult r;
    r.json = {{"cluster", a->cluster}, {"cordoned", true}, {"reason", a->reason}};
    r.text = "cluster " + a->cluster + " cordoned (receives no new tenants; `headshift uncordon " + a->cluster + "` undoes)\n";
    return r;
  });

  auto* uncordon = app.add_subcommand("uncordon", "let a drained cluster receive tenants again");
  uncordon->add_option("cluster", a->cluster, "cluster id")->required();
  bind(uncordon, [a](Context& ctx) {
    auto f = OpenFleet(ctx);
    if (!f.ok()) return Fail(f.status());
    Status st = (*f)->Uncordon(a->cluster);
    if (!st.ok()) return Fail(st);
    CommandResult r;
    r.json = {{"cluster", a->cluster}, {"cordoned", false}};
    r.text = "cluster " + a->cluster + " uncordoned\n";
    return r;
  });

  auto* rebalance = app.add_subcommand("rebalance", "fewest moves that bring every cluster near the mean device count");
  rebalance->add_option("--max-moves", a->max_moves, "at most this many moves (0 = no limit)")->check(CLI::Range(0, 100000));
  rebalance->add_flag("--dry-run", a->dry_run, "print the plan only");
  rebalance->add_flag("--allow-shared", a->allow_shared, "also reset client addresses shared with other tenants");
  rebalance->add_option("--reset-rate", a->reset_rate, "cap on session resets per second (0 = unpaced; default: sessions.reset_rate)")
      ->check(CLI::Range(int64_t{0}, int64_t{1000000}));
  rebalance->add_option("--pacing", a->pacing, "adaptive (waves follow what the target absorbs) or fixed (default: sessions.pacing)")
      ->check(CLI::IsMember({"adaptive", "fixed"}));
  bind(rebalance, [a](Context& ctx) {
    auto f = OpenFleet(ctx);
    if (!f.ok()) return Fail(f.status());
    return FromFleet((*f)->Rebalance(a->max_moves, Options(ctx, *a)));
  });

  auto* apply = app.add_subcommand("apply", "run a playbook (YAML list of steps); resumable by run id");
  apply->add_option("playbook", a->playbook, "playbook YAML file")->required();
  apply->add_flag("--dry-run", a->dry_run, "print each step's plan only");
  apply->add_option("--resume", a->resume, "continue this run id");
  apply->add_flag("--confirm", a->confirm, "pass the pause the run stopped at");
  bind(apply, [a](Context& ctx) {
    auto f = OpenFleet(ctx);
    if (!f.ok()) return Fail(f.status());
    auto r = (*f)->Apply(a->playbook, Options(ctx, *a), a->resume, a->confirm);
    if (!r.ok()) return Fail(r.status());
    CommandResult out;
    out.json = r->ToJson();
    out.text = r->ToText();
    return out;
  });
});

}  // namespace
}  // namespace headshift::cli
