// Snapshots: `sessions list --snapshot-out` records the tenant's sessions (tuple + cookie) without
// touching them; `sessions kill --snapshot-in` resets only those that still exist. Connections the
// tenant makes after the snapshot — through the new route, in a migration — survive.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>

#include "common/atomic_file.h"
#include "tests/fixtures/cli_runner.h"
#include "tests/integration/dataplane/netns_lab.h"

namespace headshift::testing {
namespace {

constexpr uint16_t kP = 4441;

class SnapshotTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { RemoveStaleTestNetns(); }

  void SetUp() override {
    ns_ = std::make_unique<TestNetns>("n");
    for (const char* a : {"10.63.0.1/32", "10.63.1.1/32", "10.63.2.1/32", "fd00:63::1/128", "fd00:63:1::1/128"}) {
      ns_->AddLoopbackAddress(a);
    }
    l_ = Listen(*ns_, "::", kP, /*dual_stack=*/true);
    before_.push_back(Connect(*ns_, "10.63.1.1", "10.63.0.1", kP, l_, "before-1"));
    before_.push_back(Connect(*ns_, "fd00:63:1::1", "fd00:63::1", kP, l_, "before-2-closes"));
    before_.push_back(Connect(*ns_, "10.63.1.1", "10.63.0.1", kP, l_, "before-3-busy"));
    MakeBusy(before_[2]);
    other_ = Connect(*ns_, "10.63.2.1", "10.63.0.1", kP, l_, "other");
    std::string p = WriteTempFile("snap-" + std::to_string(getpid()) + "/placeholder", "");
    snap_ = p.substr(0, p.rfind('/')) + "/sessions.json";
  }

  void TearDown() override {
    for (auto& c : before_) Close(c);
    for (auto& c : after_) Close(c);
    Close(other_);
    close(l_);
    ns_.reset();
  }

  CliRun TakeSnapshot() {
    return RunHeadshift({"--json", "sessions", "list", "--netns", ns_->name(), "--port", std::to_string(kP), "--client",
                         "10.63.1.0/24", "--client", "fd00:63:1::/64", "--snapshot-out", snap_});
  }

  std::unique_ptr<TestNetns> ns_;
  int l_ = -1;
  std::vector<Conn> before_, after_;
  Conn other_;
  std::string snap_;
};

TEST_F(SnapshotTest, KillSnapshotResetsOnlySnapshottedSessionsStillAlive) {
  CliRun s = TakeSnapshot();
  ASSERT_EQ(s.exit_code, 0) << s.out << s.err;
  auto sj = nlohmann::json::parse(s.out);
  EXPECT_EQ(sj["selected"], 3);
  EXPECT_EQ(sj["reset"], 0);
  struct stat st {};
  ASSERT_EQ(stat(snap_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  auto file = nlohmann::json::parse(*ReadFile(snap_));
  ASSERT_EQ(file["snapshots"].size(), 1u);
  EXPECT_EQ(file["snapshots"][0]["sockets"].size(), 3u);
  EXPECT_EQ(file["snapshots"][0]["netns"], ns_->name());
  // Snapshotting touched nothing.
  for (auto& c : before_) EXPECT_EQ(Exchange(c), "") << c.label;

  // After the snapshot: the tenant reconnects (new route), and one old session ends by itself.
  after_.push_back(Connect(*ns_, "10.63.1.1", "10.63.0.1", kP, l_, "after-1"));
  after_.push_back(Connect(*ns_, "fd00:63:1::1", "fd00:63::1", kP, l_, "after-2"));
  MakeBusy(before_[2]);
  Close(before_[1]);

  CliRun k = RunHeadshift({"--json", "sessions", "kill", "--snapshot-in", snap_});
  ASSERT_EQ(k.exit_code, 0) << k.out << k.err;
  auto j = nlohmann::json::parse(k.out);
  EXPECT_EQ(j["selected"], 3);
  EXPECT_EQ(j["reset"], 2);
  EXPECT_EQ(j["gone"], 1);
  EXPECT_EQ(j["failed"], 0);
  EXPECT_EQ(AwaitError(before_[0].client), ECONNRESET);
  EXPECT_EQ(AwaitError(before_[2].client), ECONNRESET);
  for (auto& c : after_) EXPECT_EQ(Exchange(c), "") << c.label;
  EXPECT_EQ(Exchange(other_), "");
  EXPECT_EQ(ListenerAccepts(*ns_, "10.63.1.1", "10.63.0.1", kP, l_), "");

  // Running it again finds nothing left to reset.
  CliRun again = RunHeadshift({"--json", "sessions", "kill", "--snapshot-in", snap_});
  ASSERT_EQ(again.exit_code, 0) << again.out;
  auto a = nlohmann::json::parse(again.out);
  EXPECT_EQ(a["reset"], 0);
  EXPECT_EQ(a["gone"], 3);
  for (auto& c : after_) EXPECT_EQ(Exchange(c), "") << c.label;
}

TEST_F(SnapshotTest, RefusesSnapshotsOfAnotherNamespaceOrBootAndExtraSelectors) {
  ASSERT_EQ(TakeSnapshot().exit_code, 0);
  auto doc = nlohmann::json::parse(*ReadFile(snap_));

  auto tampered = doc;
  tampered["snapshots"][0]["netns_inode"] = doc["snapshots"][0]["netns_inode"].get<uint64_t>() + 1;
  std::string f1 = WriteTempFile("tampered-ns.json", tampered.dump());
  CliRun r1 = RunHeadshift({"--json", "sessions", "kill", "--snapshot-in", f1});
  EXPECT_EQ(r1.exit_code, 2) << r1.out;
  EXPECT_NE(r1.out.find("another network namespace"), std::string::npos) << r1.out;

  tampered = doc;
  tampered["snapshots"][0]["boot_id"] = "00000000-0000-0000-0000-000000000000";
  std::string f2 = WriteTempFile("tampered-boot.json", tampered.dump());
  CliRun r2 = RunHeadshift({"--json", "sessions", "kill", "--snapshot-in", f2});
  EXPECT_EQ(r2.exit_code, 2) << r2.out;
  EXPECT_NE(r2.out.find("reboot"), std::string::npos) << r2.out;

  CliRun r3 = RunHeadshift({"--json", "sessions", "kill", "--snapshot-in", snap_, "--client", "10.63.2.0/24"});
  EXPECT_EQ(r3.exit_code, 2) << r3.out;

  // A multi-host file where the second host's snapshot is foreign: the first host is not touched.
  auto two = doc;
  two["snapshots"].push_back(tampered["snapshots"][0]);
  std::string f3 = WriteTempFile("two-hosts.json", two.dump());
  CliRun r4 = RunHeadshift({"--json", "sessions", "kill", "--snapshot-in", f3});
  EXPECT_EQ(r4.exit_code, 2) << r4.out;

  for (auto& c : before_) EXPECT_EQ(Exchange(c), "") << c.label;
  EXPECT_EQ(Exchange(other_), "");
}

}  // namespace
}  // namespace headshift::testing
