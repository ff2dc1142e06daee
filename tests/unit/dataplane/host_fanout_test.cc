#include "dataplane/host_fanout.h"

#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>

namespace headshift {
namespace {

TEST(OnEachHostTest, ResultsComeBackInHostOrder) {
  auto r = OnEachHost<std::string>(5, [](size_t i) { return "host" + std::to_string(i); });
  ASSERT_EQ(r.size(), 5u);
  for (size_t i = 0; i < r.size(); ++i) EXPECT_EQ(r[i], "host" + std::to_string(i));
  EXPECT_TRUE(OnEachHost<int>(0, [](size_t) { return 1; }).empty());
}

// Every host's function waits until all of them have started: run one after the other, each would
// give up waiting; run at once, all see the others.
TEST(OnEachHostTest, HostsRunAtTheSameTime) {
  std::mutex mu;
  std::condition_variable cv;
  size_t started = 0;
  const size_t hosts = 4;
  auto r = OnEachHost<bool>(hosts, [&](size_t) {
    std::unique_lock<std::mutex> lock(mu);
    ++started;
    cv.notify_all();
    return cv.wait_for(lock, std::chrono::seconds(5), [&] { return started == hosts; });
  });
  for (bool all_started : r) EXPECT_TRUE(all_started);
}

}  // namespace
}  // namespace headshift
