// DiffRecordedRows: one classification of recorded rows against each side's hashes, in source-id order.
#include "migrate/row_drift.h"

#include <gtest/gtest.h>

namespace headshift::migrate {
namespace {

std::map<int64_t, CopyRow> Recorded() {
  // source id -> {source id, target id, hash}; row 2 was remapped to target id 102.
  return {{1, {1, 1, 11}}, {2, {2, 102, 22}}, {4, {4, 4, 44}}, {6, {6, 6, 66}}};
}

TEST(RowDriftTest, BothSidesInSourceIdOrder) {
  const std::map<int64_t, int64_t> source = {{0, 5}, {1, 11}, {2, 99}, {3, 33}, {6, 66}, {7, 77}};  // 4 gone
  const std::map<int64_t, int64_t> target = {{1, 10}, {102, 22}, {4, 44}};                       // 6 gone
  auto d = DiffRecordedRows(Recorded(), &source, &target);
  ASSERT_EQ(d.size(), 7u);
  auto is = [&](size_t i, int64_t sid, int64_t tid, Drift s, Drift t) {
    EXPECT_EQ(d[i].source_id, sid) << i;
    EXPECT_EQ(d[i].target_id, tid) << i;
    EXPECT_EQ(d[i].source, s) << i;
    EXPECT_EQ(d[i].target, t) << i;
  };
  is(0, 0, 0, Drift::kNew, Drift::kSame);
  is(1, 1, 1, Drift::kSame, Drift::kChanged);
  is(2, 2, 102, Drift::kChanged, Drift::kSame);
  is(3, 3, 0, Drift::kNew, Drift::kSame);
  is(4, 4, 4, Drift::kGone, Drift::kSame);
  is(5, 6, 6, Drift::kSame, Drift::kGone);
  is(6, 7, 0, Drift::kNew, Drift::kSame);
}

TEST(RowDriftTest, ASideLeftOutNeverDrifts) {
  const std::map<int64_t, int64_t> target = {{1, 11}, {102, 23}, {4, 44}, {6, 66}};
  auto d = DiffRecordedRows(Recorded(), nullptr, &target);
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0].source_id, 2);
  EXPECT_EQ(d[0].target_id, 102);
  EXPECT_EQ(d[0].source, Drift::kSame);
  EXPECT_EQ(d[0].target, Drift::kChanged);

  const std::map<int64_t, int64_t> source = {{1, 11}, {2, 22}, {4, 44}, {6, 66}};
  EXPECT_TRUE(DiffRecordedRows(Recorded(), &source, nullptr).empty());
  EXPECT_TRUE(DiffRecordedRows({}, nullptr, nullptr).empty());
  EXPECT_EQ(DiffRecordedRows(Recorded(), nullptr, nullptr).size(), 0u);
}

}  // namespace
}  // namespace headshift::migrate
