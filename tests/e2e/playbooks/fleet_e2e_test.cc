// Many tenants on the lab: drain a cluster holding 3 tenants, rebalance, and the example playbooks.
#include <gtest/gtest.h>

#include "tests/e2e/playbooks/lab_fixture.h"

namespace headshift::testing {
namespace {

sandbox::LabOptions ThreeOnThree(const std::string& name) {
  sandbox::LabOptions o;
  o.name = name;
  o.clusters = {"3", "4", "5"};
  o.devices = 10;
  o.tenants = {{"hsa", "3", 10}, {"hsb", "3", 10}, {"hsc", "3", 10}, {"hsd", "4", 10}};
  return o;
}

TEST(FleetE2E, DrainCordonsThenMovesEveryTenantOff) {
  LabFixture lab(ThreeOnThree("e2e-drain"));
  ASSERT_TRUE(lab.up());
  ASSERT_TRUE(lab.WaitAllConnected());
  auto dry = lab.Headshift({"drain", "3", "--dry-run"});
  ASSERT_EQ(dry.exit_code, 0) << dry.json.dump(2) << dry.err;
  ASSERT_EQ(dry.json["plan"].size(), 3u);
  EXPECT_EQ(lab.RouteOf("hsa"), "3");  // dry run changed nothing
  lab.ResetStats();
  auto r = lab.Headshift({"drain", "3", "--concurrency", "2"});
  ASSERT_EQ(r.exit_code, 0) << r.json.dump(2) << r.err;
  EXPECT_EQ(r.json["completed"].size(), 3u);
  EXPECT_TRUE(r.json["pending"].empty());
  for (const char* t : {"hsa", "hsb", "hsc"}) {
    std::string to = lab.RouteOf(t);
    EXPECT_TRUE(to == "4" || to == "5") << t << " -> " << to;
    EXPECT_TRUE(lab.WaitTenantOn(t, to, 30000)) << t;
    EXPECT_EQ(lab.Tenant(t).value("rejections", -1), 0) << t;
  }
  EXPECT_EQ(lab.Tenant("hsd").value("disconnects", -1), 0);
  // Cordoned: a migration onto 3 is refused until uncordon.
  auto onto = lab.Headshift({"migrate", "hsd", "--to", "3", "--yes"});
  EXPECT_EQ(onto.exit_code, 3) << onto.json.dump(2);
  ASSERT_EQ(lab.Headshift({"uncordon", "3"}).exit_code, 0);
  auto back = lab.Headshift({"migrate", "hsd", "--to", "3", "--yes"});
  EXPECT_EQ(back.exit_code, 0) << back.json.dump(2);
}

TEST(FleetE2E, RebalanceAndExamplePlaybooks) {
  LabFixture lab(ThreeOnThree("e2e-rebal"));
  ASSERT_TRUE(lab.up());
  ASSERT_TRUE(lab.WaitAllConnected());
  std::string examples = std::string(HEADSHIFT_SOURCE_DIR) + "/playbooks/examples/";
  // rebalance: 30 devices on 3, 10 on 4, 0 on 5 → mean 13.3; moves bring all within tolerance.
  auto plan = lab.Headshift({"apply", examples + "rebalance.yaml", "--dry-run"});
  ASSERT_EQ(plan.exit_code, 0) << plan.json.dump(2) << plan.err;
  auto reb = lab.Headshift({"apply", examples + "rebalance.yaml"});
  ASSERT_EQ(reb.exit_code, 0) << reb.json.dump(2) << reb.err;
  EXPECT_EQ(reb.json.value("state", ""), "complete");
  auto after = lab.Headshift({"rebalance", "--dry-run"});
  EXPECT_TRUE(after.json["plan"].empty()) << after.json.dump(2);

  // drain-before-upgrade: stops at the pause (exit 4), resumes with --confirm.
  auto drain = lab.Headshift({"apply", examples + "drain-before-upgrade.yaml"});
  ASSERT_EQ(drain.exit_code, 4) << drain.json.dump(2) << drain.err;
  std::string msg = drain.json["error"].value("message", "") + drain.json["error"].value("hint", "");
  auto pos = msg.find("--resume ");
  ASSERT_NE(pos, std::string::npos) << msg;
  std::string run_id = msg.substr(pos + 9, msg.find(' ', pos + 9) - pos - 9);
  for (const char* t : {"hsa", "hsb", "hsc", "hsd"}) EXPECT_NE(lab.RouteOf(t), "3") << t;
  auto resumed = lab.Headshift({"apply", examples + "drain-before-upgrade.yaml", "--resume", run_id, "--confirm"});
  ASSERT_EQ(resumed.exit_code, 0) << resumed.json.dump(2) << resumed.err;
  EXPECT_EQ(resumed.json.value("state", ""), "complete");

  // move-tenants: canary hsb then hsc onto 4 (skipping any already there).
  auto moved = lab.Headshift({"apply", examples + "move-tenants.yaml"});
  ASSERT_EQ(moved.exit_code, 0) << moved.json.dump(2) << moved.err;
  EXPECT_EQ(lab.RouteOf("hsb"), "4");
  EXPECT_EQ(lab.RouteOf("hsc"), "4");
  for (const char* t : {"hsa", "hsb", "hsc", "hsd"}) EXPECT_EQ(lab.Tenant(t).value("rejections", -1), 0) << t;
}

}  // namespace
}  // namespace headshift::testing
