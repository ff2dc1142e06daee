// MigrationReport's collateral and target_restart contract: a restart's devices are collateral
// (counted, or null when unknown — never 0), a plan counts the restart it would cause, a refused or
// failed-before-the-reload migration counts none, and the journal form reads back the same.
#include "playbooks/migration_report.h"

#include <gtest/gtest.h>

namespace headshift {
namespace {

TargetRestartReport Restarted(std::optional<int64_t> devices) {
  TargetRestartReport tr;
  tr.cluster = std::string("4");  // not = "4": assign(const char*) trips GCC 12's -Wrestrict false positive at -O3
  tr.drops_sessions = tr.reload_needed = tr.reloaded = tr.restarted = true;
  tr.devices = devices;
  if (devices) tr.tenants = {{"a", *devices - 2}, {"b", 2}};
  else tr.unknown_reason = "cluster 4 API: HTTP 401";
  return tr;
}

TEST(MigrationReportTest, RestartDevicesAreCollateralWithABreakdown) {
  MigrationReport r;
  r.state = "complete";
  r.sessions_collateral = 3;
  r.target_restart = Restarted(12);
  r.target_restart->reconnected = 11;
  r.target_restart->stragglers = {"a/dev-7"};
  nlohmann::json j = r.ToJson();
  EXPECT_EQ(j["collateral"], 15);
  EXPECT_EQ(j["sessions_collateral"], 3);
  EXPECT_EQ(j["collateral_detail"], (nlohmann::json{{"sessions", 3}, {"target_restart", 12}}));
  EXPECT_EQ(j["target_restart"]["devices_reconnecting"], 12);
  EXPECT_EQ(j["target_restart"]["tenants"], (nlohmann::json{{"a", 10}, {"b", 2}}));
  EXPECT_EQ(j["target_restart"]["stragglers"], nlohmann::json::array({"a/dev-7"}));
  EXPECT_NE(r.ToText().find("collateral (other tenants' devices disturbed): 15 (sessions 3, target restart 12)"),
            std::string::npos)
      << r.ToText();
  // The journal form (target_ready details) reads back the same.
  TargetRestartReport back = TargetRestartReport::FromJson(j["target_restart"]);
  EXPECT_EQ(back.ToJson(), j["target_restart"]);
}

TEST(MigrationReportTest, UnknownRestartCountIsNullNeverZero) {
  MigrationReport r;
  r.state = "complete";
  r.target_restart = Restarted(std::nullopt);
  nlohmann::json j = r.ToJson();
  EXPECT_TRUE(j["collateral"].is_null()) << j.dump();
  EXPECT_TRUE(j["collateral_detail"]["target_restart"].is_null());
  EXPECT_TRUE(j["target_restart"]["devices_reconnecting"].is_null());
  EXPECT_NE(j["target_restart"].value("message", "").find("unknown number"), std::string::npos);
  EXPECT_NE(r.ToText().find("collateral (other tenants' devices disturbed): unknown"), std::string::npos) << r.ToText();
}

TEST(MigrationReportTest, PlannedRestartCountsOnlyInAPlan) {
  TargetRestartReport tr = Restarted(5);
  tr.planned = true;
  tr.reloaded = false;
  MigrationReport plan;
  plan.state = "planned";
  plan.target_restart = tr;
  EXPECT_EQ(plan.ToJson()["collateral"], 5);
  EXPECT_TRUE(plan.ToJson()["target_restart"]["would_restart"].get<bool>());
  MigrationReport refused = plan;
  refused.state = "refused";
  EXPECT_EQ(refused.ToJson()["collateral"], 0) << "a refused migration restarted nothing";
}

TEST(MigrationReportTest, ReloadThatWasNotNeededSaysSo) {
  MigrationReport r;
  r.state = "complete";
  TargetRestartReport tr;
  tr.cluster = std::string("4");  // not = "4": assign(const char*) trips GCC 12's -Wrestrict false positive at -O3
  tr.drops_sessions = true;
  tr.devices = 0;
  r.target_restart = tr;
  nlohmann::json j = r.ToJson();
  EXPECT_FALSE(j["target_restart"]["restarted"].get<bool>());
  EXPECT_EQ(j["collateral"], 0);
  EXPECT_NE(r.ToText().find("cluster 4 already served the tenant's node keys: not reloaded, nothing restarted"),
            std::string::npos)
      << r.ToText();
}

TEST(MigrationReportTest, RisksAreStructuredAndOldStringRisksReadBack) {
  Risk risk{"target_restart", "reloading cluster 4 restarts it", {{"cluster", "4"}, {"devices", 12}}};
  nlohmann::json j = risk.ToJson();
  EXPECT_EQ(j, (nlohmann::json{{"kind", "target_restart"}, {"message", "reloading cluster 4 restarts it"},
                               {"cluster", "4"}, {"devices", 12}}));
  EXPECT_EQ(Risk::FromJson(j).ToJson(), j);
  Risk old = Risk::FromJson("no sessions.hosts configured");
  EXPECT_EQ(old.kind, "other");
  EXPECT_EQ(old.message, "no sessions.hosts configured");
}

}  // namespace
}  // namespace headshift
