// The batch plan's pure parts: grouping moves by target, the restarts a target config implies, and the
// absorb rate read from journal records (adaptive pacing's measurement first, then a restart's).
#include "playbooks/batch_plan.h"

#include <gtest/gtest.h>

#include "playbooks/fleet_report.h"

namespace headshift {
namespace {

using json = nlohmann::json;

migrate::MigrationRecord Rec(const std::string& id, const std::string& to) {
  migrate::MigrationRecord m;
  m.id = id;
  m.tenant = "t-" + id;
  m.from = "3";
  m.to = to;
  m.state = "complete";
  m.started_at = "2026-12-07T08:00:00Z";
  return m;
}

void AddStep(migrate::MigrationRecord& m, const std::string& step, json details) {
  m.steps.push_back({step, "done", "", "", std::move(details)});
}

TEST(BatchPlanTest, GroupsByTargetInOrderOfFirstAppearance) {
  std::vector<PlannedMove> moves = {{"a", "3", "5", 1}, {"b", "3", "4", 2}, {"c", "3", "5", 3}};
  auto g = GroupByTarget(moves);
  ASSERT_EQ(g.size(), 2u);
  EXPECT_EQ(g[0].first, "5");
  ASSERT_EQ(g[0].second.size(), 2u);
  EXPECT_EQ(g[0].second[1].tenant, "c");
  EXPECT_EQ(g[1].first, "4");
}

TEST(BatchPlanTest, RestartsOnlyWhenTheReloadRestartsACachingTarget) {
  ClusterConfig c;
  c.id = "4";
  c.reload_command = {"systemctl", "restart", "headscale"};
  c.reload_drops_sessions = true;
  c.cached_nodes = true;
  EXPECT_EQ(ExpectedRestarts(c), 1);
  c.cached_nodes = false;
  EXPECT_EQ(ExpectedRestarts(c), 0);
  c.cached_nodes = true;
  c.reload_drops_sessions = false;
  EXPECT_EQ(ExpectedRestarts(c), 0);
  c.reload_drops_sessions = true;
  c.reload_command.clear();
  EXPECT_EQ(ExpectedRestarts(c), 0);
}

TEST(BatchPlanTest, AbsorbRateUnknownWithoutAMeasurement) {
  std::vector<migrate::MigrationRecord> none = {Rec("m1", "4")};
  AddStep(none[0], "target_ready", {{"target_restart", {{"restarted", false}}}});
  AbsorbRate r = MeasuredAbsorbRate(none, "4");
  EXPECT_FALSE(r.per_s.has_value());
  EXPECT_NE(r.source.find("no absorb rate measured onto cluster 4"), std::string::npos) << r.source;
  // A restart that dropped nobody measures nothing either.
  std::vector<migrate::MigrationRecord> nobody = {Rec("m2", "4")};
  AddStep(nobody[0], "target_ready", {{"target_restart", {{"restarted", true}, {"reconnected", 0}, {"reconnect_ms", 900}}}});
  EXPECT_FALSE(MeasuredAbsorbRate(nobody, "4").per_s.has_value());
}

TEST(BatchPlanTest, AbsorbRatePrefersTheNewestRestartThenPacing) {
  migrate::MigrationRecord older = Rec("m-old", "4");
  AddStep(older, "reset_sessions", {{"pacing", {{"mode", "adaptive"}, {"absorb_per_s", 180.5}}}});
  migrate::MigrationRecord newer = Rec("m-new", "4");
  AddStep(newer, "target_ready", {{"target_restart", {{"restarted", true}, {"reconnected", 50}, {"reconnect_ms", 2000}}}});
  migrate::MigrationRecord elsewhere = Rec("m-5", "5");
  AddStep(elsewhere, "reset_sessions", {{"pacing", {{"absorb_per_s", 999.0}}}});
  // A restart measured the event a plan predicts: it wins over a (faster) paced reset.
  AbsorbRate restart = MeasuredAbsorbRate({elsewhere, older, newer}, "4");
  ASSERT_TRUE(restart.per_s.has_value());
  EXPECT_DOUBLE_EQ(*restart.per_s, 25.0);  // 50 back in 2 s
  EXPECT_NE(restart.source.find("target_ready target_restart of migration m-new"), std::string::npos) << restart.source;

  // No restart journaled: the paced rate, named as a lower bound.
  AbsorbRate r = MeasuredAbsorbRate({elsewhere, older}, "4");
  ASSERT_TRUE(r.per_s.has_value());
  EXPECT_DOUBLE_EQ(*r.per_s, 180.5);
  EXPECT_NE(r.source.find("reset_sessions pacing.absorb_per_s of migration m-old"), std::string::npos) << r.source;
  EXPECT_NE(r.source.find("lower bound"), std::string::npos) << r.source;

  migrate::MigrationRecord batch = Rec("m-b", "4");
  batch.details["batch_restart"] = {{"restarted", true}, {"reconnected", 30}, {"reconnect_ms", 3000}};
  AbsorbRate b = MeasuredAbsorbRate({batch, newer}, "4");
  ASSERT_TRUE(b.per_s.has_value());
  EXPECT_DOUBLE_EQ(*b.per_s, 10.0);
  EXPECT_NE(b.source.find("batch_restart of cluster 4"), std::string::npos) << b.source;
}

TEST(BatchPlanTest, FleetReportCarriesRestartsAndPausedMoves) {
  FleetReport rep;
  rep.operation = "drain";
  rep.plan = {{"a", "3", "4", 5}};
  rep.paused.push_back({rep.plan[0], "m-1"});
  rep.target_restarts["4"] = 1;
  rep.target_restart_detail["4"] = {{"restarts", 1}, {"message", "cluster 4: 1 restart"}};
  json j = rep.ToJson();
  EXPECT_FALSE(j.value("ok", true)) << "a paused move is not done";
  EXPECT_EQ(j["target_restarts"], (json{{"4", 1}}));
  ASSERT_EQ(j["paused"].size(), 1u);
  EXPECT_EQ(j["paused"][0].value("resume", ""), "headshift resume m-1");
  std::string text = rep.ToText();
  EXPECT_NE(text.find("paused  a 3 -> 4 at policy (m-1)"), std::string::npos) << text;
  EXPECT_NE(text.find("\n  cluster 4: 1 restart\n"), std::string::npos) << text;
}

}  // namespace
}  // namespace headshift
