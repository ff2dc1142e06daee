// ParseBatcherConnected: headscale's /debug/batcher JSON (v0.29 hscontrol/debug.go DebugBatcherInfo) read
// as the set of connected node ids; anything else is refused, never read as "nobody connected".
#include "controlplane/connected_nodes.h"

#include <gtest/gtest.h>

namespace headshift {
namespace {

TEST(BatcherSignalTest, ConnectedNodesAreThoseMarkedConnected) {
  auto r = ParseBatcherConnected(R"({
    "connected_nodes": {"1": {"connected": true, "active_connections": 1},
                        "7": {"connected": false, "active_connections": 0},
                        "12": {"connected": true, "active_connections": 2}},
    "total_nodes": 3})");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(*r, (std::set<std::string>{"1", "12"}));
  auto empty = ParseBatcherConnected(R"({"connected_nodes": {}, "total_nodes": 0})");
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->empty());
}

TEST(BatcherSignalTest, AnotherAnswerIsRefused) {
  for (const char* body : {"=== Batcher Connected Nodes ===\n\nSummary: 0 connected, 0 total\n",  // the text form
                           R"({"total_nodes": 1})", R"({"connected_nodes": [1, 2]})",
                           R"({"connected_nodes": {"1": {"connected": "yes"}}})"}) {
    auto r = ParseBatcherConnected(body);
    EXPECT_FALSE(r.ok()) << body;
    EXPECT_EQ(r.status().code(), ExitCode::kBadInput) << body;
  }
}

}  // namespace
}  // namespace headshift
