// `headshift apply`: a playbook's steps run in order, recorded in headshift_playbook_runs so a run
// resumes by id (FleetOps::Apply, playbooks/fleet_ops.h).
#include <random>

#include "playbooks/fleet_ops_impl.h"
#include "playbooks/playbook.h"

namespace headshift {

using json = nlohmann::json;

StatusOr<PgConn*> FleetOps::Impl::RunsDb() {
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
