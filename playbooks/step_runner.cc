#include "playbooks/step_runner.h"

#include <algorithm>
#include <csignal>
#include <cstdlib>

#include <spdlog/spdlog.h>

#include "playbooks/client_selection.h"
#include "playbooks/journal_details.h"

namespace headshift {

using json = nlohmann::json;

namespace {

// Test hook: HEADSHIFT_CRASH_AFTER=<step> kills the process right after <step> is journaled done.
void MaybeCrashAfter(const std::string& step) {
  const char* at = std::getenv("HEADSHIFT_CRASH_AFTER");
  if (at && step == at) {
    spdlog::warn("fault injection: crashing after step {}", step);
    std::raise(SIGKILL);
  }
}

void Refresh(MigrationRun& run) {
  if (auto fresh = run.env.mover->journal().Get(run.rec.id); fresh.ok()) run.rec = *fresh;
}

}  // namespace

size_t StepRunner::IndexOf(const std::string& step) const {
  return static_cast<size_t>(
      std::find_if(steps_.begin(), steps_.end(), [&](const MigrationStep& s) { return s.name == step; }) -
      steps_.begin());
}

Status StepRunner::RecordBeforeJournal(MigrationRun& run, const std::string& step, const json& details) {
  migrate::Journal& journal = run.env.mover->journal();
  HS_RETURN_IF_ERROR(journal.StartStep(run.rec, step));
  HS_RETURN_IF_ERROR(journal.FinishStep(run.rec, step, "done", details));
  Refresh(run);
  MaybeCrashAfter(step);
  return Status::Ok();
}

Status StepRunner::RunStep(MigrationRun& run, const MigrationStep& step) {
  const std::string& name = step.name;
  migrate::Journal& journal = run.env.mover->journal();
  run.rep.step = name;
  if (run.opts.progress) run.opts.progress(run.ref.tenant, name, false, 0);
  json start = step.start_details ? step.start_details(run) : json::object();
  HS_RETURN_IF_ERROR(journal.StartStep(run.rec, name, start));
  auto t0 = MigrationClock::now();
  StatusOr<json> r = step.run(run);
  double ms = MsSince(t0);
  run.rep.timings_ms[name] = ms;
  if (!r.ok()) {
    (void)journal.FinishStep(run.rec, name, "failed", {{"error", r.status().message()}, {"ms", ms}});
    return r.status().WithContext(name);
  }
  json details = *r;
  details["ms"] = ms;
  HS_RETURN_IF_ERROR(journal.FinishStep(run.rec, name, "done", details));
  Refresh(run);  // later steps read earlier details
  if (run.opts.progress) run.opts.progress(run.ref.tenant, name, true, ms);
  MaybeCrashAfter(name);
  return Status::Ok();
}

// The tenant lock lives on dedicated connections: if one died (PostgreSQL restarted, the session was
// terminated, an idle kill), another migrate/resume/rollback of the tenant can start. Checked before
// every step and before a rollback; once lost, nothing more is changed (a rollback too could race).
Status StepRunner::CheckLock(MigrationRun& run, const std::string& next) {
  if (!run.lock || run.lock->Held()) return Status::Ok();
  std::string msg = "migration " + run.rec.id + " lost the lock of tenant " + run.ref.tenant + " before " + next +
                    " (a lock connection to PostgreSQL was closed); stopped without changing anything more";
  (void)run.env.mover->journal().SetState(run.rec, "needs_operator", {{"error", msg}, {"step", next}});
  run.rep.state = "needs_operator";
  return Status::NeedsOperator(msg, "make sure no other headshift is working on " + run.ref.tenant +
                                        " (`headshift status " + run.ref.tenant + "`), then run `headshift resume " +
                                        run.rec.id + "`");
}

Status StepRunner::TakeLock(MigrationRun& run) {
  auto lock = run.env.mover->Lock(run.rec.tenant, run.rec.from, run.rec.to, run.rec.id);
  if (!lock.ok()) return lock.status();
  run.lock = std::move(lock).value();
  return Status::Ok();
}

// Stops the run after `after` (journal state paused); `resume` continues at `next`. Exit 0.
Status StepRunner::Pause(MigrationRun& run, const std::string& after, const std::string& next) {
  json details{{"paused_after", after}, {"next_step", next}};
  size_t next_index = IndexOf(next);
  if (!run.env.route && next_index < steps_.size() && steps_[next_index].cut) {
    // What each proxy host of the fleet selects: the tenant's public client addresses (the rows are
    // on the target now), shared ones spared unless --allow-shared, as snapshot_sessions would. Kept
    // in the journal: a later run of the playbook (resume, rollback) reads them from `status`.
    auto sel = SelectClients(*run.env.mover, run.env.config, run.ref.tenant, run.ref.to, run.opts.allow_shared);
    if (!sel.ok()) return sel.status().WithContext("client addresses for the fleet's cut");
    run.rep.client_addresses = sel->selected;
    run.rep.shared_addresses = sel->shared;
    details["client_addresses"] = sel->selected;
    details["shared_addresses"] = sel->shared;
    run.rep.warnings.push_back("run the cut on every proxy host (`route set --snapshot-out FILE --client … --port …`, "
                               "then `sessions kill --snapshot-in FILE`), then `headshift resume " + run.rec.id +
                               " --from reconnected` (playbooks/ansible/migrate_tenant.yml does all of it)");
  }
  HS_RETURN_IF_ERROR(run.env.mover->journal().SetState(run.rec, "paused", details));
  run.rep.state = "paused";
  run.rep.paused_after = after;
  run.rep.next_step = next;
  spdlog::info("{}: paused after {} (resume continues at {})", run.rec.id, after, next);
  return Status::Ok();
}

Status StepRunner::RunFrom(MigrationRun& run, size_t first) {
  for (size_t i = first; i < steps_.size(); ++i) {
    const MigrationStep& step = steps_[i];
    const std::string& name = step.name;
    if (step.before_journal) continue;  // runs before the journal exists
    if (!run.env.route && step.cut && !StepDone(run.rec, name)) {
      // proxy.kind fleet: the cut is the proxy hosts' (the playbook records it with resume --from).
      return Pause(run, i > 0 ? steps_[i - 1].name : "", name);
    }
    HS_RETURN_IF_ERROR(CheckLock(run, name));
    Status st = RunStep(run, step);
    if (st.ok()) {
      if (name == run.opts.until && i + 1 < steps_.size()) return Pause(run, name, steps_[i + 1].name);
      continue;
    }
    if (!step.after_cut) {
      spdlog::error("{}: {}; rolling back", run.rec.id, st.message());
      Status undo = Rollback(run, st.message());
      if (!undo.ok()) return undo;
      return Status::Failed("migration " + run.rec.id + " failed at " + name + " and was rolled back: " + st.message(),
                            st.hint());
    }
    // After the cut the devices live on the target: never move them back on our own.
    (void)run.env.mover->journal().SetState(run.rec, "needs_operator", {{"error", st.message()}, {"step", name}});
    run.rep.state = "needs_operator";
    return Status::NeedsOperator("migration " + run.rec.id + " stopped at " + name + ": " + st.message(),
                                 "fix the cause and run `headshift resume " + run.rec.id + "`");
  }
  HS_RETURN_IF_ERROR(run.env.mover->journal().SetState(run.rec, "complete",
                                                       {{"timings_ms", run.rep.ToJson()["timings_ms"]}}));
  run.rep.state = "complete";
  return Status::Ok();
}

// resume --from: records the cut steps in [first, target) as done outside headshift, then `first`
// = target. Only cut steps can be skipped; a target at or before `first` changes nothing (a re-run
// of the same playbook converges).
Status StepRunner::SkipExternal(MigrationRun& run, size_t& first, size_t target) {
  if (target >= steps_.size()) {
    return Status::BadInput("resume --from: unknown step", "use one of the steps of `headshift status ID`");
  }
  if (target <= first) return Status::Ok();
  for (size_t i = first; i < target; ++i) {
    if (!steps_[i].cut) {
      std::string cut;
      for (const auto& s : steps_) {
        if (s.cut) cut += (cut.empty() ? "" : ", ") + s.name;
      }
      return Status::BadInput("resume --from " + steps_[target].name + " would skip " + steps_[i].name +
                                  ", which headshift must run itself (only the cut — " + cut +
                                  " — can be done outside)",
                              "run `headshift resume " + run.rec.id + " --until " + steps_[i].name +
                                  "` first, or drop --from");
    }
  }
  migrate::Journal& journal = run.env.mover->journal();
  for (size_t i = first; i < target; ++i) {
    json d{{"external", true}, {"recorded_by", "resume --from " + steps_[target].name}};
    HS_RETURN_IF_ERROR(journal.StartStep(run.rec, steps_[i].name, d));
    HS_RETURN_IF_ERROR(journal.FinishStep(run.rec, steps_[i].name, "done", d));
    run.rep.external_steps.push_back(steps_[i].name);
  }
  Refresh(run);
  if (run.rep.route_after.empty() || StepStarted(run.rec, "switch_route")) run.rep.route_after = run.ref.to;
  first = target;
  return Status::Ok();
}

Status StepRunner::Resume(MigrationRun& run) {
  size_t first = 0;
  while (first < steps_.size() && StepDone(run.rec, steps_[first].name)) ++first;
  if (!run.opts.from.empty()) HS_RETURN_IF_ERROR(SkipExternal(run, first, IndexOf(run.opts.from)));
  spdlog::info("resume {}: continuing at {}", run.rec.id, first < steps_.size() ? steps_[first].name : "the end");
  (void)run.env.mover->journal().SetState(run.rec, "running");
  run.rep.state = "running";
  run.rep.paused_after.clear();
  run.rep.next_step.clear();
  return RunFrom(run, first);
}

std::vector<const MigrationStep*> StepRunner::UndoOrder(const MigrationRun& run) const {
  std::vector<const MigrationStep*> order, waiting;  // waiting: undo_after a step not undone yet
  for (auto it = steps_.rbegin(); it != steps_.rend(); ++it) {
    if (!it->undo) continue;
    if (!it->undo_after.empty()) {
      waiting.push_back(&*it);
      continue;
    }
    order.push_back(&*it);
    for (auto w = waiting.begin(); w != waiting.end();) {
      if ((*w)->undo_after == it->name) {
        order.push_back(*w);
        w = waiting.erase(w);
      } else {
        ++w;
      }
    }
  }
  order.insert(order.end(), waiting.begin(), waiting.end());  // their anchor has no undo
  std::stable_partition(order.begin(), order.end(),
                        [&](const MigrationStep* s) { return s->undo_first && s->undo_first(run); });
  return order;
}

Status StepRunner::Rollback(MigrationRun& run, const std::string& reason) {
  HS_RETURN_IF_ERROR(CheckLock(run, "rollback"));
  // A step that failed half-way is journaled (started, failed) but not yet in run.rec: its undo must
  // run too (the policy step may have written the target's policy before its read-back failed).
  Refresh(run);
  migrate::Journal& journal = run.env.mover->journal();
  json details{{"reason", reason}};
  auto t0 = MigrationClock::now();
  std::vector<const MigrationStep*> order = UndoOrder(run);
  (void)journal.StartStep(run.rec, "rollback", {{"reason", reason}});
  for (const MigrationStep* step : order) {
    if (!StepStarted(run.rec, step->name)) continue;
    Status st = step->undo(run, details);
    if (!st.ok()) {
      (void)journal.FinishStep(run.rec, "rollback", "failed", {{"error", st.message()}});
      (void)journal.SetState(run.rec, "needs_operator", {{"rollback_error", st.message()}});
      run.rep.state = "needs_operator";
      return Status::NeedsOperator("rollback of " + run.rec.id + " failed: " + st.message(),
                                   "fix the cause, then run `headshift rollback " + run.rec.id + "` again");
    }
  }
  run.rep.timings_ms["rollback"] = MsSince(t0);
  (void)journal.FinishStep(run.rec, "rollback", "done", details);
  HS_RETURN_IF_ERROR(journal.SetState(run.rec, "rolled_back", details));
  run.rep.state = "rolled_back";
  run.rep.route_after = run.rep.route_before.empty() ? run.ref.from : run.rep.route_before;
  return Status::Ok();
}

}  // namespace headshift
