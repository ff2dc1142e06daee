// The step table and the runner's rollback order, without a database: MigrationEnv is built from a
// Config only (nothing is opened), which is all the order depends on.
#include "playbooks/step_runner.h"

#include <gtest/gtest.h>

#include "playbooks/steps/steps.h"

namespace headshift {
namespace {

std::vector<std::string> Names(const std::vector<const MigrationStep*>& steps) {
  std::vector<std::string> out;
  for (const auto* s : steps) out.push_back(s->name);
  return out;
}

// The journal's step names are its on-disk format: the table must keep them and their order.
TEST(StepTableTest, KeepsTheJournalsStepNamesInOrder) {
  std::vector<std::string> want = {"preflight",      "copy",        "verify",   "policy",   "target_ready",
                                   "snapshot_sessions", "switch_route", "route_live", "reset_sessions",
                                   "reconnected",    "tailnet",     "catch_up", "complete"};
  EXPECT_EQ(MigrationSteps(), want);
  std::vector<std::string> cut, after_cut, before_journal;
  for (const auto& s : steps::Table()) {
    if (s.cut) cut.push_back(s.name);
    if (s.after_cut) after_cut.push_back(s.name);
    if (s.before_journal) before_journal.push_back(s.name);
    EXPECT_EQ(static_cast<bool>(s.run), !s.before_journal) << s.name;
  }
  EXPECT_EQ(cut, (std::vector<std::string>{"snapshot_sessions", "switch_route", "route_live", "reset_sessions"}));
  EXPECT_EQ(after_cut, (std::vector<std::string>{"reconnected", "tailnet", "catch_up", "complete"}));
  EXPECT_EQ(before_journal, (std::vector<std::string>{"preflight"}));
}

// Shared layout: the source control plane accepts a device only with its row back, so rows go
// first; split: the target copy is removed last. Either way the sessions are reset again only once
// the route leads back. The target's policy is restored before its rows go, and its stale in-memory
// entries (ghosts) are removed right after the rows.
TEST(StepRunnerTest, RollbackOrderFollowsTheLayout) {
  StepRunner runner(steps::Table());
  MigrationOptions opts;
  Config shared;
  shared.database.layout = DbLayout::kShared;
  MigrationEnv shared_env(shared);
  EXPECT_EQ(Names(runner.UndoOrder(MigrationRun(shared_env, opts))),
            (std::vector<std::string>{"copy", "switch_route", "reset_sessions", "policy", "target_ready"}));
  Config split;
  split.database.layout = DbLayout::kSplit;
  MigrationEnv split_env(split);
  EXPECT_EQ(Names(runner.UndoOrder(MigrationRun(split_env, opts))),
            (std::vector<std::string>{"switch_route", "reset_sessions", "policy", "copy", "target_ready"}));
}

// A step is added by one more entry in a table: the runner finds it and undoes it in reverse order.
TEST(StepRunnerTest, AnInsertedStepTakesItsPlace) {
  std::vector<MigrationStep> table = steps::Table();
  auto noop_undo = [](MigrationRun&, nlohmann::json&) { return Status::Ok(); };
  auto at = table.begin() + static_cast<std::ptrdiff_t>(StepRunner(steps::Table()).IndexOf("target_ready"));
  table.insert(at, MigrationStep{.name = "example",
                                 .run = [](MigrationRun&) -> StatusOr<nlohmann::json> { return nlohmann::json{}; },
                                 .undo = noop_undo});
  StepRunner runner(table);
  EXPECT_EQ(runner.IndexOf("example"), 4u);
  EXPECT_EQ(runner.IndexOf("target_ready"), 5u);
  EXPECT_EQ(runner.IndexOf("nope"), table.size());
  Config split;
  split.database.layout = DbLayout::kSplit;
  MigrationEnv env(split);
  MigrationOptions opts;
  EXPECT_EQ(Names(runner.UndoOrder(MigrationRun(env, opts))),
            (std::vector<std::string>{"switch_route", "reset_sessions", "example", "policy", "copy", "target_ready"}));
}

}  // namespace
}  // namespace headshift
