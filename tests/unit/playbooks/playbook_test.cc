#include "playbooks/playbook.h"

#include <gtest/gtest.h>

#include <filesystem>

namespace headshift {
namespace {

Config TwoClusters() {
  Config c;
  c.clusters.push_back({"3", "http://a", {}, "b3", {}, {}, 0, false, true});
  c.clusters.push_back({"4", "http://b", {}, "b4", {}, {}, 0, false, true});
  return c;
}

TEST(PlaybookTest, ParsesEveryStepKind) {
  auto pb = ParsePlaybook(R"(name: all
steps:
  - drain: {cluster: "3", to: ["4"], concurrency: 2}
  - pause: {message: "upgrade now"}
  - uncordon: {cluster: "3"}
  - migrate: {tenants: [hsa, hsb], to: "4", allow_shared: true}
  - canary: {tenants: [a, b, c], to: "3", canary: 1, batch: 2}
  - rebalance: {max_moves: 3}
)", "p.yaml", TwoClusters());
  ASSERT_TRUE(pb.ok()) << pb.status().ToString();
  ASSERT_EQ(pb->steps.size(), 6u);
  EXPECT_EQ(pb->steps[0].Describe(), "drain 3 to 4");
  EXPECT_EQ(pb->steps[0].concurrency, 2);
  EXPECT_EQ(pb->steps[1].message, "upgrade now");
  EXPECT_TRUE(pb->steps[3].allow_shared);
  EXPECT_EQ(pb->steps[4].Describe(), "canary a,b,c to 3 (1 first, then batches of 2)");
  EXPECT_EQ(pb->steps[5].max_moves, 3);
  EXPECT_EQ(pb->digest.size(), 16u);
}

TEST(PlaybookTest, RefusesBadPlaybooksNamingTheField) {
  struct Case {
    const char* yaml;
    const char* expect;
  } cases[] = {
      {"name: x\nsteps:\n  - migrate: {tenants: [a], to: \"9\"}\n", "steps[0].migrate.to: cluster '9' is not defined"},
      {"name: x\nsteps:\n  - teleport: {tenants: [a]}\n", "steps[0]: unknown step 'teleport'"},
      {"name: x\nsteps:\n  - migrate: {tenants: [a], to: \"4\", speed: 3}\n", "steps[0].migrate.speed: unknown key"},
      {"name: x\nsteps: []\n", "playbook.steps: expected a non-empty list"},
      {"steps:\n  - rebalance: {}\n", "playbook.name: required field is missing"},
      {"name: x\nsteps:\n  - drain: {cluster: \"3\", concurrency: 0}\n", "steps[0].drain.concurrency: expected an integer >= 1"},
      {"name: x\nsteps:\n  - migrate: {to: \"4\"}\n", "steps[0].migrate.tenants: required field is missing"},
  };
  for (const auto& c : cases) {
    auto pb = ParsePlaybook(c.yaml, "p.yaml", TwoClusters());
    ASSERT_FALSE(pb.ok()) << c.yaml;
    EXPECT_EQ(pb.status().code(), ExitCode::kBadInput);
    EXPECT_NE(pb.status().message().find(c.expect), std::string::npos) << pb.status().message();
  }
}

TEST(PlaybookTest, ShippedExamplesParse) {
  int n = 0;
  auto cfg = TwoClusters();
  cfg.clusters.push_back({"5", "http://c", {}, "b5", {}, {}, 0, false, true});
  for (const auto& e : std::filesystem::directory_iterator(std::string(HEADSHIFT_SOURCE_DIR) + "/playbooks/examples")) {
    if (e.path().filename() == "headshift.yaml") continue;
    auto pb = LoadPlaybook(e.path().string(), cfg);
    EXPECT_TRUE(pb.ok()) << e.path() << ": " << pb.status().ToString();
    ++n;
  }
  EXPECT_GE(n, 3);
}

}  // namespace
}  // namespace headshift
