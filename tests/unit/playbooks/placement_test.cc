#include "playbooks/placement.h"

#include <gtest/gtest.h>

namespace headshift {
namespace {

std::vector<ClusterSlot> Three(int64_t cap = 0) { return {{"3", cap, false}, {"4", cap, false}, {"5", cap, false}}; }

TEST(PlanDrainTest, LargestFirstToLeastLoaded) {
  std::vector<TenantLoad> t = {{"a", "3", 70, {}}, {"b", "3", 50, {}}, {"c", "3", 30, {}}, {"d", "4", 40, {}}};
  auto moves = PlanDrain("3", t, Three(), {});
  ASSERT_TRUE(moves.ok()) << moves.status().ToString();
  ASSERT_EQ(moves->size(), 3u);
  EXPECT_EQ((*moves)[0].tenant, "a");
  EXPECT_EQ((*moves)[0].to, "5");  // 5 has 0 < 4's 40
  EXPECT_EQ((*moves)[1].tenant, "b");
  EXPECT_EQ((*moves)[1].to, "4");  // 4: 40 < 5: 70
  EXPECT_EQ((*moves)[2].tenant, "c");
  EXPECT_EQ((*moves)[2].to, "5");  // 4: 90 vs 5: 70
}

TEST(PlanDrainTest, RespectsCapacityCordonToAndAllowed) {
  std::vector<ClusterSlot> c = {{"3", 0, false}, {"4", 100, false}, {"5", 0, true}};
  std::vector<TenantLoad> t = {{"a", "3", 80, {}}, {"b", "3", 30, {}}};
  auto moves = PlanDrain("3", t, c, {});
  ASSERT_FALSE(moves.ok());  // b does not fit on 4 after a, 5 is cordoned
  EXPECT_EQ(moves.status().code(), ExitCode::kRefused);
  EXPECT_NE(moves.status().message().find("b (30 devices)"), std::string::npos) << moves.status().message();

  std::vector<TenantLoad> t2 = {{"a", "3", 10, {"5", "4"}}};
  auto m2 = PlanDrain("3", t2, {{"3", 0, false}, {"4", 0, false}, {"5", 0, false}, {"6", 0, false}}, {"4", "6"});
  ASSERT_TRUE(m2.ok());
  EXPECT_EQ((*m2)[0].to, "4");  // allowed ∩ --to
  EXPECT_FALSE(PlanDrain("3", t2, Three(), {"9"}).ok());
  EXPECT_EQ(PlanDrain("3", t2, Three(), {"3"}).status().code(), ExitCode::kBadInput);
}

TEST(PlanRebalanceTest, AlreadyBalancedNeedsNoMoves) {
  std::vector<TenantLoad> t = {{"a", "3", 70, {}}, {"b", "4", 72, {}}, {"c", "5", 68, {}}};
  auto p = PlanRebalance(t, Three(), 0.1, 10);
  EXPECT_TRUE(p.moves.empty());
  EXPECT_TRUE(p.balanced_after);
}

TEST(PlanRebalanceTest, FindsTheSingleBestMove) {
  // 3 holds 140, 4 holds 70, 5 holds 0: moving one 70 tenant from 3 to 5 balances all.
  std::vector<TenantLoad> t = {{"a", "3", 70, {}}, {"b", "3", 70, {}}, {"c", "4", 70, {}}};
  auto p = PlanRebalance(t, Three(), 0.1, 10);
  ASSERT_EQ(p.moves.size(), 1u);
  EXPECT_EQ(p.moves[0].from, "3");
  EXPECT_EQ(p.moves[0].to, "5");
  EXPECT_TRUE(p.balanced_after);
}

TEST(PlanRebalanceTest, FewestMovesBeatsGreedyOrder) {
  // mean 100. 3: 150 (90+60), 4: 100, 5: 50 (50). One move (60: 3→5) balances; moving 90 would not.
  std::vector<TenantLoad> t = {{"x", "3", 90, {}}, {"y", "3", 60, {}}, {"z", "4", 100, {}}, {"w", "5", 50, {}}};
  auto p = PlanRebalance(t, Three(), 0.15, 10);
  ASSERT_EQ(p.moves.size(), 1u);
  EXPECT_EQ(p.moves[0].tenant, "y");
  EXPECT_TRUE(p.balanced_after);
}

TEST(PlanRebalanceTest, MaxMovesCapsThePlan) {
  std::vector<TenantLoad> t;
  for (int i = 0; i < 6; ++i) t.push_back({std::string("t").append(std::to_string(i)), "3", 10, {}});
  auto p = PlanRebalance(t, Three(), 0.0, 1);
  EXPECT_EQ(p.moves.size(), 1u);
  EXPECT_FALSE(p.balanced_after);
  auto full = PlanRebalance(t, Three(), 0.0, 10);
  EXPECT_EQ(full.moves.size(), 4u);
  EXPECT_TRUE(full.balanced_after);
}

}  // namespace
}  // namespace headshift
