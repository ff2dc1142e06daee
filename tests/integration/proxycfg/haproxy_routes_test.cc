// HaproxyMapRoutes and `headshift route` against a real HAProxy (Debian package) started by the
// test on 127.0.0.1 with two HTTP backends: a flip moves new requests of one tenant only, an
// upgraded (101) connection opened before the flip stays on the old backend until it is reset,
// Restore puts the exact previous state back, and every refused or failed change leaves the map
// directory byte-identical and HAProxy's map unchanged.
#include <fcntl.h>
#include <linux/fs.h>
#include <sys/stat.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <filesystem>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "common/config.h"
#include "proxycfg/haproxy_map_routes.h"
#include "proxycfg/haproxy_runtime_client.h"
#include "proxycfg/route_backend.h"
#include "tests/fixtures/cli_runner.h"
#include "tests/integration/proxycfg/proxy_test_util.h"

namespace headshift {
namespace {

using testing::DirSnapshot;
using testing::GetThroughProxy;
using testing::ReadWholeFile;
using testing::SnapshotDir;
using testing::UpgradedConnection;

const char kMap[] = "# tenant routes (managed by headshift route set)\nhsa.demo.com be_a\nhsb.demo.com   be_a\n";

class HaproxyRoutesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::filesystem::create_directories(dir_ / "maps");
    std::filesystem::create_directories(dir_ / "run");
    map_ = dir_ / "maps/tenants.map";
    testing::WriteFile(map_, kMap);
    haproxy_ = std::make_unique<testing::HaproxyProcess>(
        dir_ / "run", map_,
        std::map<std::string, int>{{"be_a", a_.port()}, {"be_b", b_.port()}, {"be_down", -testing::FreePort()}});
    ASSERT_TRUE(haproxy_->started()) << ReadWholeFile(haproxy_->log());
    // be_down's health check must have marked it DOWN before any test relies on that.
    HaproxyRuntimeClient rt(haproxy_->socket_path(), 2000);
    for (int i = 0; i < 250; ++i) {
      auto st = rt.BackendStatus("be_down");
      if (st.ok() && *st == "DOWN") break;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    WriteConfig(haproxy_->socket_path());
    auto c = LoadConfig(config_path_);
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    config_ = *c;
    auto b = MakeRouteBackend(config_);
    ASSERT_TRUE(b.ok()) << b.status().ToString();
    routes_ = std::move(b).value();
  }

  void WriteConfig(const std::string& socket) {
    config_path_ = dir_ / "headshift.yaml";
    testing::WriteFile(config_path_, R"(database:
  layout: shared
  dsn_env: HSPX_UNUSED_DSN
clusters:
  - {id: "3", control_url: "http://127.0.0.1:9", backend: be_a}
  - {id: "4", control_url: "http://127.0.0.1:9", backend: be_b}
  - {id: "5", control_url: "http://127.0.0.1:9", backend: be_down}
  - {id: "6", control_url: "http://127.0.0.1:9", backend: be_nowhere}
proxy:
  kind: haproxy
  haproxy:
    runtime_socket: )" + socket + R"(
    map_file: )" + map_ + R"(
    host_template: "{tenant}.demo.com"
timeouts:
  route_live_ms: 5000
)");
  }

  std::vector<MapEntry> LiveMap() {
    HaproxyRuntimeClient rt(haproxy_->socket_path(), 2000);
    auto m = rt.ShowMap(map_);
    EXPECT_TRUE(m.ok()) << m.status().ToString();
    return m.ok() ? *m : std::vector<MapEntry>{};
  }
  static std::string Dump(const std::vector<MapEntry>& m) {
    std::string s;
    for (const auto& e : m) s += e.key + "=" + e.value + ";";
    return s;
  }

  testing::CliRun Cli(std::vector<std::string> args) {
    args.insert(args.begin(), {"--config", config_path_});
    return testing::RunHeadshift(args);
  }

  testing::TempDir dir_;
  std::string map_;
  std::string config_path_;
  testing::NamedBackend a_{"A"};
  testing::NamedBackend b_{"B"};
  std::unique_ptr<testing::HaproxyProcess> haproxy_;
  Config config_;
  std::unique_ptr<RouteBackend> routes_;
};

TEST_F(HaproxyRoutesTest, SetMovesNewRequestsOfOneTenantUpgradedStreamStaysUntilReset) {
  const int port = haproxy_->frontend_port();
  ASSERT_EQ(GetThroughProxy(port, "hsa.demo.com"), "A");
  ASSERT_EQ(GetThroughProxy(port, "hsb.demo.com"), "A");
  UpgradedConnection before(port, "hsa.demo.com");
  ASSERT_TRUE(before.ok());
  ASSERT_EQ(before.Echo("one"), "A:one");

  ASSERT_EQ(::chmod(map_.c_str(), 0640), 0);
  ASSERT_TRUE(routes_->CheckOwnership("hsa").ok());
  auto change = routes_->Set("hsa", "4");
  ASSERT_TRUE(change.ok()) << change.status().ToString();
  EXPECT_TRUE(change->changed);
  EXPECT_EQ(change->previous_backend, std::optional<std::string>("be_a"));
  EXPECT_EQ(change->previous_cluster, std::optional<std::string>("3"));
  EXPECT_EQ(change->new_backend, "be_b");
  Status live = routes_->WaitLive("hsa", "4", std::chrono::milliseconds(2000));
  ASSERT_TRUE(live.ok()) << live.ToString();

  EXPECT_EQ(GetThroughProxy(port, "hsa.demo.com"), "B");  // new requests follow the map
  EXPECT_EQ(GetThroughProxy(port, "hsb.demo.com"), "A");  // another tenant keeps its backend
  EXPECT_EQ(before.Echo("two"), "A:two");                 // the upgraded stream stays on A ...
  before.Reset();                                         // ... until it is reset
  UpgradedConnection after(port, "hsa.demo.com");
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(after.Echo("three"), "B:three");

  // The map file carries the change (only the tenant's line), so a reload keeps it; its mode is kept.
  EXPECT_EQ(ReadWholeFile(map_),
            "# tenant routes (managed by headshift route set)\nhsa.demo.com be_b\nhsb.demo.com   be_a\n");
  EXPECT_EQ(SnapshotDir(dir_ / "maps").files["tenants.map"].second, 0640u);
  auto got = routes_->Get("hsa");
  ASSERT_TRUE(got.ok() && got->has_value());
  EXPECT_EQ((*got)->cluster_id, "4");
  EXPECT_EQ((*got)->detail, "");

  // Set to the current value: a no-op that writes nothing.
  DirSnapshot snap = SnapshotDir(dir_ / "maps");
  auto again = routes_->Set("hsa", "4");
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(again->changed);
  EXPECT_EQ(SnapshotDir(dir_ / "maps"), snap);

  // Restore (from the journalled JSON form) puts the exact previous bytes back; twice is a no-op.
  auto restored = RouteChange::FromJson(nlohmann::json::parse(change->ToJson().dump()));
  ASSERT_TRUE(restored.ok());
  Status r1 = routes_->Restore(*restored);
  ASSERT_TRUE(r1.ok()) << r1.ToString();
  EXPECT_EQ(ReadWholeFile(map_), kMap);
  EXPECT_EQ(GetThroughProxy(port, "hsa.demo.com"), "A");
  Status r2 = routes_->Restore(*change);
  EXPECT_TRUE(r2.ok()) << r2.ToString();
  EXPECT_EQ(ReadWholeFile(map_), kMap);
}

TEST_F(HaproxyRoutesTest, AddRoutesANewTenantAndRestoreRemovesItAgain) {
  auto refused = routes_->Set("hsc", "4");
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), ExitCode::kBadInput);
  EXPECT_NE(refused.status().message().find("unknown tenant 'hsc'"), std::string::npos) << refused.status().message();
  EXPECT_EQ(ReadWholeFile(map_), kMap);

  auto change = routes_->Add("hsc", "4");
  ASSERT_TRUE(change.ok()) << change.status().ToString();
  EXPECT_FALSE(change->previous_backend.has_value());
  ASSERT_TRUE(routes_->WaitLive("hsc", "4", std::chrono::milliseconds(2000)).ok());
  EXPECT_EQ(GetThroughProxy(haproxy_->frontend_port(), "hsc.demo.com"), "B");
  EXPECT_EQ(ReadWholeFile(map_), std::string(kMap) + "hsc.demo.com be_b\n");
  auto list = routes_->List();
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->size(), 3u);
  EXPECT_EQ((*list)[2].tenant, "hsc");

  ASSERT_TRUE(routes_->Restore(*change).ok());
  EXPECT_EQ(ReadWholeFile(map_), kMap);
  EXPECT_EQ(GetThroughProxy(haproxy_->frontend_port(), "hsc.demo.com"), "");  // no backend any more
  EXPECT_EQ(Dump(LiveMap()), "hsa.demo.com=be_a;hsb.demo.com=be_a;");
}

TEST_F(HaproxyRoutesTest, RestoreRefusesWhenSomeoneElseMovedTheTenant) {
  auto change = routes_->Set("hsa", "4");
  ASSERT_TRUE(change.ok());
  HaproxyRuntimeClient rt(haproxy_->socket_path(), 2000);
  ASSERT_TRUE(rt.SetMap(map_, "hsa.demo.com", "be_down").ok());
  Status st = routes_->Restore(*change);
  EXPECT_EQ(st.code(), ExitCode::kRefused);
  EXPECT_NE(st.message().find("changed since: HAProxy serves be_down"), std::string::npos) << st.message();
}

TEST_F(HaproxyRoutesTest, WaitLiveFailsWithWhatHaproxyShowedWhenTheBackendIsDown) {
  auto change = routes_->Set("hsa", "5");
  ASSERT_TRUE(change.ok()) << change.status().ToString();
  Status st = routes_->WaitLive("hsa", "5", std::chrono::milliseconds(300));
  EXPECT_EQ(st.code(), ExitCode::kFailed);
  EXPECT_NE(st.message().find("hsa.demo.com -> be_down, but backend be_down is DOWN"), std::string::npos)
      << st.message();
  ASSERT_TRUE(routes_->Restore(*change).ok());
}

TEST_F(HaproxyRoutesTest, FileWriteFailureUndoesTheRuntimeChange) {
  // An immutable map file: the directory is writable, but the rename onto the file fails
  // (EPERM), after HAProxy's map was already changed; the change must be undone.
  int fd = ::open(map_.c_str(), O_RDONLY);
  int flags = 0;
  if (ioctl(fd, FS_IOC_GETFLAGS, &flags) != 0 || (flags |= FS_IMMUTABLE_FL, ioctl(fd, FS_IOC_SETFLAGS, &flags)) != 0) {
    ::close(fd);
    GTEST_SKIP() << "the filesystem under /tmp does not support the immutable flag";
  }
  DirSnapshot snap = SnapshotDir(dir_ / "maps");
  auto change = routes_->Set("hsa", "4");
  flags &= ~FS_IMMUTABLE_FL;
  ioctl(fd, FS_IOC_SETFLAGS, &flags);
  ::close(fd);
  ASSERT_FALSE(change.ok());
  EXPECT_EQ(change.status().code(), ExitCode::kFailed);
  EXPECT_NE(change.status().message().find("HAProxy's map was restored to be_a"), std::string::npos)
      << change.status().message();
  EXPECT_EQ(SnapshotDir(dir_ / "maps"), snap);
  EXPECT_EQ(Dump(LiveMap()), "hsa.demo.com=be_a;hsb.demo.com=be_a;");
  EXPECT_EQ(GetThroughProxy(haproxy_->frontend_port(), "hsa.demo.com"), "A");
}

TEST_F(HaproxyRoutesTest, CliShowAndSet) {
  auto show = Cli({"--json", "route", "show"});
  ASSERT_EQ(show.exit_code, 0) << show.err;
  auto j = nlohmann::json::parse(show.out);
  EXPECT_EQ(j["proxy"], "haproxy");
  ASSERT_EQ(j["routes"].size(), 2u);
  EXPECT_EQ(j["routes"][0]["tenant"], "hsa");
  EXPECT_EQ(j["routes"][0]["cluster"], "3");

  auto set = Cli({"--json", "route", "set", "hsa", "4"});
  ASSERT_EQ(set.exit_code, 0) << set.out << set.err;
  j = nlohmann::json::parse(set.out);
  EXPECT_EQ(j["from"], "3");
  EXPECT_EQ(j["to"], "4");
  EXPECT_EQ(j["changed"], true);
  EXPECT_EQ(j["live"], true);
  EXPECT_EQ(j["change"]["previous_backend"], "be_a");
  EXPECT_EQ(GetThroughProxy(haproxy_->frontend_port(), "hsa.demo.com"), "B");

  auto one = Cli({"route", "show", "hsa"});
  ASSERT_EQ(one.exit_code, 0) << one.err;
  EXPECT_NE(one.out.find("hsa     4        be_b"), std::string::npos) << one.out;

  // Not live by the deadline (backend DOWN): the previous route is restored, exit 1.
  auto down = Cli({"--json", "route", "set", "hsa", "5"});
  EXPECT_EQ(down.exit_code, 1) << down.out << down.err;
  j = nlohmann::json::parse(down.out);
  EXPECT_EQ(j["restored"], true);
  EXPECT_NE(j["error"]["message"].get<std::string>().find("backend be_down is DOWN"), std::string::npos) << down.out;
  EXPECT_EQ(GetThroughProxy(haproxy_->frontend_port(), "hsa.demo.com"), "B");
  EXPECT_EQ(Dump(LiveMap()), "hsa.demo.com=be_b;hsb.demo.com=be_a;");
}

struct CliError {
  const char* name;
  std::vector<std::string> args;
  int exit_code;
  std::string message;
};

class HaproxyCliErrorTest : public HaproxyRoutesTest, public ::testing::WithParamInterface<CliError> {};

TEST_P(HaproxyCliErrorTest, RefusedWithNothingChanged) {
  const CliError& e = GetParam();
  DirSnapshot before = SnapshotDir(dir_ / "maps");
  std::string live_before = Dump(LiveMap());
  auto run = Cli(e.args);
  EXPECT_EQ(run.exit_code, e.exit_code) << run.out << run.err;
  EXPECT_NE(run.err.find(e.message), std::string::npos) << run.err;
  DirSnapshot after = SnapshotDir(dir_ / "maps");
  EXPECT_EQ(after, before) << testing::Describe(after);
  EXPECT_EQ(Dump(LiveMap()), live_before);
}

INSTANTIATE_TEST_SUITE_P(
    Cases, HaproxyCliErrorTest,
    ::testing::Values(
        CliError{"unknown_tenant", {"route", "set", "nosuch", "4"}, 2, "unknown tenant 'nosuch'"},
        CliError{"unknown_cluster", {"route", "set", "hsa", "9"}, 2, "unknown cluster '9'"},
        CliError{"invalid_tenant", {"route", "set", "hs a;x", "4"}, 2, "tenant name 'hs a;x' contains ' '"},
        CliError{"backend_not_in_haproxy", {"route", "set", "hsa", "6"}, 2, "HAProxy has no backend 'be_nowhere'"},
        CliError{"show_unknown_tenant", {"route", "show", "nosuch"}, 2, "tenant 'nosuch' has no route"}),
    [](const auto& info) { return std::string(info.param.name); });

TEST_F(HaproxyRoutesTest, CliRuntimeSocketMissingChangesNothing) {
  WriteConfig(dir_ / "run/missing.sock");
  DirSnapshot before = SnapshotDir(dir_ / "maps");
  auto run = Cli({"route", "set", "hsa", "4"});
  EXPECT_EQ(run.exit_code, 1) << run.err;
  EXPECT_NE(run.err.find("HAProxy runtime socket " + dir_ / "run/missing.sock" + ": No such file or directory"),
            std::string::npos)
      << run.err;
  EXPECT_NE(run.err.find("fix: start HAProxy"), std::string::npos) << run.err;
  EXPECT_EQ(SnapshotDir(dir_ / "maps"), before);
  EXPECT_EQ(Dump(LiveMap()), "hsa.demo.com=be_a;hsb.demo.com=be_a;");
}

TEST_F(HaproxyRoutesTest, CliDirectoryNotWritableChangesNothing) {
  DirSnapshot before = SnapshotDir(dir_ / "maps");
  std::vector<std::string> argv{HEADSHIFT_BINARY, "--config", config_path_, "route", "set", "hsa", "4"};
  auto run = testing::RunProgram(testing::ReadOnlyDirArgv(dir_ / "maps", argv));
  EXPECT_EQ(run.exit_code, 1) << run.err;
  EXPECT_NE(run.err.find("map file directory " + dir_ / "maps" + " is not writable: Read-only file system"),
            std::string::npos)
      << run.err;
  EXPECT_EQ(SnapshotDir(dir_ / "maps"), before);
  EXPECT_EQ(Dump(LiveMap()), "hsa.demo.com=be_a;hsb.demo.com=be_a;");
}

TEST_F(HaproxyRoutesTest, CliDuplicateMapKeyIsRefusedNamingFileAndLines) {
  testing::WriteFile(map_, std::string(kMap) + "hsa.demo.com be_b\n");
  DirSnapshot before = SnapshotDir(dir_ / "maps");
  auto run = Cli({"route", "set", "hsa", "4"});
  EXPECT_EQ(run.exit_code, 3) << run.err;
  EXPECT_NE(run.err.find("map file " + map_ + " has 2 entries for key hsa.demo.com (lines 2, 4)"), std::string::npos)
      << run.err;
  EXPECT_EQ(SnapshotDir(dir_ / "maps"), before);
}

}  // namespace
}  // namespace headshift
