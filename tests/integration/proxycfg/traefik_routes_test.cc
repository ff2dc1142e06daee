// TraefikFileRoutes and `headshift route` for proxy.kind traefik-file, against FakeTraefikApi (a
// labelled test stand-in serving Traefik-shaped API responses derived from the directory after a
// delay). Covers: owned files written atomically and only those; the live check and each of its
// failure cases (API unreachable, 404 unknown router, router in error, deadline passed with the
// last state shown, credentials refused); Restore; ownership refusals naming file and key; adopt;
// and "nothing changed" (byte-identical directory) for every refused or failed change.
#include <filesystem>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "common/config.h"
#include "proxycfg/route_backend.h"
#include "proxycfg/traefik_file_routes.h"
#include "tests/fixtures/cli_runner.h"
#include "tests/integration/proxycfg/fake_traefik_api.h"
#include "tests/integration/proxycfg/proxy_test_util.h"

namespace headshift {
namespace {

using testing::DirSnapshot;
using testing::ReadWholeFile;
using testing::SnapshotDir;

constexpr char kToken[] = "hspx-secret-token-4711";

class TraefikRoutesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dyn_ = dir_ / "dynamic";
    std::filesystem::create_directories(dyn_);
    setenv("HSPX_TRAEFIK_TOKEN", kToken, 1);
    fake_ = std::make_unique<testing::FakeTraefikApi>(dyn_, 150);
    fake_->RequireBearer(kToken);
    WriteConfig(fake_->url());
  }

  void WriteConfig(const std::string& api_url, const std::string& token_env = "HSPX_TRAEFIK_TOKEN",
                   const std::string& extra = "") {
    config_path_ = dir_ / "headshift.yaml";
    testing::WriteFile(config_path_, R"(database:
  layout: shared
  dsn_env: HSPX_UNUSED_DSN
clusters:
  - {id: "3", control_url: "http://127.0.0.1:9", upstream_url: "http://127.0.0.1:18083", backend: headscale-cluster3}
  - {id: "4", control_url: "http://127.0.0.1:9", upstream_url: "http://127.0.0.1:18084", backend: headscale-cluster4}
proxy:
  kind: traefik-file
  traefik:
    directory: )" + dyn_ + R"(
    api_url: )" + api_url + R"(
    api_auth: {bearer_token_env: )" + token_env + R"(}
    host_template: "{tenant}.demo.com"
    entry_points: [websecure]
    cert_resolver: le
    throttle_ms: 0
)" + extra + R"(timeouts:
  route_live_ms: 5000
  http_ms: 1000
)");
    auto c = LoadConfig(config_path_);
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    config_ = *c;
    auto b = TraefikFileRoutes::Make(config_);
    ASSERT_TRUE(b.ok()) << b.status().ToString();
    routes_ = std::move(b).value();
  }

  testing::CliRun Cli(std::vector<std::string> args) {
    args.insert(args.begin(), {"--config", config_path_});
    return testing::RunHeadshift(args, {{"HSPX_TRAEFIK_TOKEN", kToken}});
  }

  // Routes tenant hsa to cluster 3 and waits until the fake API serves it.
  void RouteHsaTo3() {
    auto c = routes_->Add("hsa", "3");
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    ASSERT_TRUE(fake_->WaitApplied(3000));
  }

  testing::TempDir dir_;
  std::string dyn_;
  std::string config_path_;
  std::unique_ptr<testing::FakeTraefikApi> fake_;
  Config config_;
  std::unique_ptr<TraefikFileRoutes> routes_;
};

TEST_F(TraefikRoutesTest, AddSetWaitLiveRestoreWithOwnedFilesOnly) {
  auto added = routes_->Add("hsa", "3");
  ASSERT_TRUE(added.ok()) << added.status().ToString();
  EXPECT_FALSE(added->previous_backend.has_value());
  ASSERT_TRUE(routes_->WaitLive("hsa", "3", std::chrono::milliseconds(3000)).ok());
  // Exactly two owned files, no temp files left behind.
  DirSnapshot snap = SnapshotDir(dyn_);
  ASSERT_EQ(snap.files.size(), 2u) << testing::Describe(snap);
  const std::string tenant_file = dyn_ + "/headshift-tenant-hsa.yml";
  const std::string services_file = dyn_ + "/headshift-services.yml";
  EXPECT_EQ(snap.files.count("headshift-tenant-hsa.yml"), 1u);
  EXPECT_EQ(snap.files.count("headshift-services.yml"), 1u);
  EXPECT_EQ(snap.files["headshift-tenant-hsa.yml"].second, 0644u);
  const std::string before_set = ReadWholeFile(tenant_file);
  EXPECT_NE(before_set.find("rule: Host(`hsa.demo.com`)"), std::string::npos) << before_set;
  EXPECT_NE(before_set.find("certResolver: le"), std::string::npos) << before_set;
  EXPECT_NE(ReadWholeFile(services_file).find("url: http://127.0.0.1:18084"), std::string::npos);

  fake_->SetDelay(2000);  // long enough to observe the old state right after the write
  auto change = routes_->Set("hsa", "4");
  ASSERT_TRUE(change.ok()) << change.status().ToString();
  EXPECT_EQ(change->previous_backend, std::optional<std::string>("headscale-cluster3"));
  EXPECT_EQ(change->previous_cluster, std::optional<std::string>("3"));
  EXPECT_TRUE(change->changed);
  const std::string services_after = ReadWholeFile(services_file);
  EXPECT_EQ(services_after, snap.files["headshift-services.yml"].first);  // services file untouched
  // The API still shows the old service until the provider picks the change up.
  auto api = TraefikApiClient::Make(config_.proxy.traefik, 1000);
  ASSERT_TRUE(api.ok());
  auto seen = (*api)->GetRouter("http", "hsa@file");
  ASSERT_TRUE(seen.ok() && seen->has_value());
  EXPECT_EQ((*seen)->service, "headscale-cluster3");
  Status live = routes_->WaitLive("hsa", "4", std::chrono::milliseconds(10000));
  ASSERT_TRUE(live.ok()) << live.ToString();
  fake_->SetDelay(150);
  seen = (*api)->GetRouter("http", "hsa@file");
  EXPECT_EQ((*seen)->service, "headscale-cluster4");

  auto route = routes_->Get("hsa");
  ASSERT_TRUE(route.ok() && route->has_value());
  EXPECT_EQ((*route)->cluster_id, "4");
  EXPECT_TRUE((*route)->managed);

  // No-op set, then restore (twice) to the exact previous bytes.
  snap = SnapshotDir(dyn_);
  auto again = routes_->Set("hsa", "4");
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(again->changed);
  EXPECT_EQ(SnapshotDir(dyn_), snap);
  ASSERT_TRUE(routes_->Restore(*change).ok());
  EXPECT_EQ(ReadWholeFile(tenant_file), before_set);
  ASSERT_TRUE(routes_->Restore(*change).ok());
  EXPECT_EQ(ReadWholeFile(tenant_file), before_set);
  ASSERT_TRUE(routes_->WaitLive("hsa", "3", std::chrono::milliseconds(10000)).ok());

  // Restoring the Add removes the tenant file (it was absent before).
  ASSERT_TRUE(routes_->Restore(*added).ok());
  EXPECT_FALSE(std::filesystem::exists(tenant_file));
}

TEST_F(TraefikRoutesTest, SetKeepsOperatorEditsToOwnedFileExceptService) {
  RouteHsaTo3();
  const std::string tenant_file = dyn_ + "/headshift-tenant-hsa.yml";
  std::string text = ReadWholeFile(tenant_file);
  text.replace(text.find("      service:"), 0, "      priority: 42\n");
  testing::WriteFile(tenant_file, text);
  auto change = routes_->Set("hsa", "4");
  ASSERT_TRUE(change.ok()) << change.status().ToString();
  std::string after = ReadWholeFile(tenant_file);
  EXPECT_NE(after.find("priority: 42"), std::string::npos) << after;
  EXPECT_NE(after.find("service: headscale-cluster4"), std::string::npos) << after;
  EXPECT_EQ(after.rfind("# Managed by headshift", 0), 0u) << after;
}

TEST_F(TraefikRoutesTest, WaitLiveDeadlinePassedShowsWhatTheApiShowedLast) {
  RouteHsaTo3();
  fake_->SetDelay(60000);  // Traefik never picks the change up in time
  auto change = routes_->Set("hsa", "4");
  ASSERT_TRUE(change.ok());
  Status st = routes_->WaitLive("hsa", "4", std::chrono::milliseconds(400));
  EXPECT_EQ(st.code(), ExitCode::kFailed);
  EXPECT_NE(st.message().find("not live on cluster 4 after 400 ms"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("last showed: router hsa@file service=headscale-cluster3 status=enabled"),
            std::string::npos)
      << st.message();
}

TEST_F(TraefikRoutesTest, WaitLiveRouterUnknownIs404) {
  // A second directory Traefik does not watch: the API never learns the router.
  std::filesystem::create_directories(dir_ / "elsewhere");
  testing::FakeTraefikApi other(dir_ / "elsewhere", 10);
  WriteConfig(other.url(), "HSPX_TRAEFIK_TOKEN");
  auto c = routes_->Add("hsa", "3");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  Status st = routes_->WaitLive("hsa", "3", std::chrono::milliseconds(300));
  EXPECT_EQ(st.code(), ExitCode::kFailed);
  EXPECT_NE(st.message().find("Traefik does not know http router hsa@file (HTTP 404)"), std::string::npos)
      << st.message();
  EXPECT_NE(st.hint().find("providers.file.directory is " + dyn_), std::string::npos) << st.hint();
}

TEST_F(TraefikRoutesTest, WaitLiveRouterInErrorFailsAtOnceWithTraefiksError) {
  // An operator's edit to the owned file references a middleware that does not exist.
  RouteHsaTo3();
  const std::string tenant_file = dyn_ + "/headshift-tenant-hsa.yml";
  std::string text = ReadWholeFile(tenant_file);
  text.replace(text.find("      service:"), 0, "      middlewares: [auth-missing]\n");
  testing::WriteFile(tenant_file, text);
  ASSERT_TRUE(routes_->Set("hsa", "4").ok());
  // A long deadline: the "in error" failure (not "not live after ...") shows it did not wait for it.
  Status st = routes_->WaitLive("hsa", "4", std::chrono::milliseconds(60000));
  EXPECT_EQ(st.code(), ExitCode::kFailed);
  EXPECT_EQ(st.message().find("not live"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("in error: router hsa@file service=headscale-cluster4 status=disabled "
                              "error=[middleware \"auth-missing@file\" does not exist]"),
            std::string::npos)
      << st.message();
}

TEST_F(TraefikRoutesTest, WaitLiveApiUnreachable) {
  RouteHsaTo3();
  WriteConfig("http://127.0.0.1:" + std::to_string(testing::FreePort()));
  Status st = routes_->WaitLive("hsa", "3", std::chrono::milliseconds(300));
  EXPECT_EQ(st.code(), ExitCode::kFailed);
  EXPECT_NE(st.message().find("last showed: Traefik API unreachable at http://127.0.0.1:"), std::string::npos)
      << st.message();
}

TEST_F(TraefikRoutesTest, WaitLiveServerDownIsNotLive) {
  RouteHsaTo3();
  fake_->SetServerDown("http://127.0.0.1:18084");
  ASSERT_TRUE(routes_->Set("hsa", "4").ok());
  Status st = routes_->WaitLive("hsa", "4", std::chrono::milliseconds(500));
  EXPECT_EQ(st.code(), ExitCode::kFailed);
  EXPECT_NE(st.message().find("service headscale-cluster4@file status=enabled http://127.0.0.1:18084=DOWN"),
            std::string::npos)
      << st.message();
}

TEST_F(TraefikRoutesTest, CredentialsRefusedBeforeAnyWrite) {
  RouteHsaTo3();
  setenv("HSPX_WRONG_TOKEN", "not-the-token", 1);
  WriteConfig(fake_->url(), "HSPX_WRONG_TOKEN");
  DirSnapshot before = SnapshotDir(dyn_);
  auto change = routes_->Set("hsa", "4");
  ASSERT_FALSE(change.ok());
  EXPECT_EQ(change.status().code(), ExitCode::kBadInput);
  EXPECT_NE(change.status().message().find("refused the credentials (HTTP 401"), std::string::npos)
      << change.status().message();
  EXPECT_EQ(SnapshotDir(dyn_), before);
  // WaitLive reports it at once as well.
  EXPECT_EQ(routes_->WaitLive("hsa", "3", std::chrono::milliseconds(5000)).code(), ExitCode::kBadInput);
}

TEST_F(TraefikRoutesTest, AnUnparsableFileAnywhereInTheDirectoryIsRefusedInPreflight) {
  // Real Traefik (3.7) applies no file-provider change while any file of the directory fails to parse,
  // even one naming nothing of the tenant's: preflight must refuse instead of flipping into a dead end.
  RouteHsaTo3();
  testing::WriteFile(dyn_ + "/zz-operator.yml", "http:\n  routers:\n    other:\n      service: [unclosed\n");
  DirSnapshot before = SnapshotDir(dyn_);
  Status st = routes_->CheckOwnership("hsa");
  EXPECT_EQ(st.code(), ExitCode::kRefused);
  EXPECT_NE(st.message().find(dyn_ + "/zz-operator.yml"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("do not parse"), std::string::npos) << st.message();
  EXPECT_EQ(SnapshotDir(dyn_), before);
  std::filesystem::remove(dyn_ + "/zz-operator.yml");
  EXPECT_TRUE(routes_->CheckOwnership("hsa").ok());
}

TEST_F(TraefikRoutesTest, DuplicatesInOperatorFilesAreRefusedNamingFileAndKey) {
  RouteHsaTo3();
  std::filesystem::create_directories(dyn_ + "/sub");
  testing::WriteFile(dyn_ + "/sub/ops.yml", "http:\n  routers:\n    hsa:\n      rule: Host(`x`)\n      service: s\n");
  testing::WriteFile(dyn_ + "/legacy.toml", "[http.services.headscale-cluster4.loadBalancer]\n"
                                            "  [[http.services.headscale-cluster4.loadBalancer.servers]]\n"
                                            "    url = \"http://127.0.0.1:1\"\n");
  testing::WriteFile(dyn_ + "/broken.yaml", "http: {{ if .X }}\n  routers:\n    hsa:\n");
  DirSnapshot before = SnapshotDir(dyn_);
  Status st = routes_->CheckOwnership("hsa");
  EXPECT_EQ(st.code(), ExitCode::kRefused);
  EXPECT_NE(st.message().find("http.routers.hsa is also defined in " + dyn_ + "/sub/ops.yml"), std::string::npos)
      << st.message();
  EXPECT_NE(st.message().find("http.services.headscale-cluster4 is also defined in " + dyn_ + "/legacy.toml"),
            std::string::npos)
      << st.message();
  EXPECT_NE(st.message().find("http.routers.hsa (file does not parse; name found in it) is also defined in " + dyn_ +
                              "/broken.yaml"),
            std::string::npos)
      << st.message();
  auto change = routes_->Set("hsa", "4");
  EXPECT_EQ(change.status().code(), ExitCode::kRefused);
  EXPECT_EQ(SnapshotDir(dyn_), before);

  auto run = Cli({"route", "set", "hsa", "4"});
  EXPECT_EQ(run.exit_code, 3) << run.err;
  EXPECT_NE(run.err.find("sub/ops.yml"), std::string::npos) << run.err;
  EXPECT_NE(run.err.find("fix: run `headshift route adopt hsa`"), std::string::npos) << run.err;
  EXPECT_EQ(SnapshotDir(dyn_), before);
}

TEST_F(TraefikRoutesTest, AdoptCopiesOperatorDefinitionsAndPrintsWhatToDelete) {
  const std::string ops = dyn_ + "/ops.yml";
  const std::string ops_text =
      "http:\n"
      "  routers:\n"
      "    hsa:\n"
      "      rule: Host(`hsa.demo.com`) || Host(`old-hsa.demo.com`)\n"
      "      entryPoints: [websecure]\n"
      "      service: headscale-cluster3\n"
      "      tls: {}\n"
      "    dashboard:\n"
      "      rule: Host(`traefik.demo.com`)\n"
      "      service: api@internal\n"
      "  services:\n"
      "    headscale-cluster3:\n"
      "      loadBalancer:\n"
      "        servers: [{url: \"http://127.0.0.1:18083\"}]\n"
      "        healthCheck: {path: /health, interval: 10s}\n";
  testing::WriteFile(ops, ops_text);
  ASSERT_TRUE(fake_->WaitApplied(3000));

  auto run = Cli({"--json", "route", "adopt", "--all"});
  ASSERT_EQ(run.exit_code, 0) << run.out << run.err;
  auto j = nlohmann::json::parse(run.out);
  ASSERT_EQ(j["adopted"].size(), 1u) << run.out;  // the dashboard router routes to no cluster
  EXPECT_EQ(j["adopted"][0]["tenant"], "hsa");
  EXPECT_EQ(j["adopted"][0]["cluster"], "3");
  EXPECT_EQ(j["adopted"][0]["delete"], nlohmann::json::parse(R"([{"file":")" + ops + R"(","key":"http.routers.hsa"}])"));
  EXPECT_EQ(j["delete_services"],
            nlohmann::json::parse(R"([{"file":")" + ops + R"(","key":"http.services.headscale-cluster3"}])"));
  EXPECT_EQ(ReadWholeFile(ops), ops_text);  // never edits a file it does not own
  std::string adopted = ReadWholeFile(dyn_ + "/headshift-tenant-hsa.yml");
  EXPECT_NE(adopted.find("old-hsa.demo.com"), std::string::npos) << adopted;  // a verbatim copy
  std::string services = ReadWholeFile(dyn_ + "/headshift-services.yml");
  EXPECT_NE(services.find("healthCheck"), std::string::npos) << services;  // the operator's definition
  EXPECT_NE(services.find("headscale-cluster4"), std::string::npos) << services;  // generated

  auto text = Cli({"route", "adopt", "hsa"});
  ASSERT_EQ(text.exit_code, 0) << text.err;
  EXPECT_NE(text.out.find("delete from " + ops + ": http.routers.hsa"), std::string::npos) << text.out;

  // Still refused while the duplicates exist; managed once they are deleted.
  EXPECT_EQ(Cli({"route", "set", "hsa", "4"}).exit_code, 3);
  testing::WriteFile(ops,
                     "http:\n  routers:\n    dashboard:\n      rule: Host(`traefik.demo.com`)\n"
                     "      service: api@internal\n");
  auto set = Cli({"--json", "route", "set", "hsa", "4"});
  ASSERT_EQ(set.exit_code, 0) << set.out << set.err;
  j = nlohmann::json::parse(set.out);
  EXPECT_EQ(j["from"], "3");
  EXPECT_EQ(j["live"], true);
  adopted = ReadWholeFile(dyn_ + "/headshift-tenant-hsa.yml");
  EXPECT_NE(adopted.find("old-hsa.demo.com"), std::string::npos) << adopted;
  EXPECT_NE(adopted.find("service: headscale-cluster4"), std::string::npos) << adopted;
}

TEST_F(TraefikRoutesTest, CliShowAndErrorsChangeNothing) {
  RouteHsaTo3();
  auto show = Cli({"--json", "route", "show"});
  ASSERT_EQ(show.exit_code, 0) << show.err;
  auto j = nlohmann::json::parse(show.out);
  EXPECT_EQ(j["proxy"], "traefik-file");
  ASSERT_EQ(j["routes"].size(), 1u);
  EXPECT_EQ(j["routes"][0]["cluster"], "3");
  EXPECT_EQ(j["routes"][0]["source"], dyn_ + "/headshift-tenant-hsa.yml");

  DirSnapshot before = SnapshotDir(dyn_);
  struct Case {
    std::vector<std::string> args;
    int code;
    std::string msg;
  };
  for (const Case& c : std::vector<Case>{
           {{"route", "set", "nosuch", "4"}, 2, "unknown tenant 'nosuch'"},
           {{"route", "set", "hsa", "9"}, 2, "unknown cluster '9'"},
           {{"route", "set", "h`sa", "4"}, 2, "contains '`'"},
           {{"route", "show", "nosuch"}, 2, "tenant 'nosuch' has no route"},
       }) {
    auto run = Cli(c.args);
    EXPECT_EQ(run.exit_code, c.code) << c.args[2] << ": " << run.err;
    EXPECT_NE(run.err.find(c.msg), std::string::npos) << run.err;
    EXPECT_EQ(SnapshotDir(dyn_), before) << c.args[2];
  }
  // Credentials refused: exit 2, nothing written.
  auto bad = testing::RunHeadshift({"--config", config_path_, "route", "set", "hsa", "4"},
                                   {{"HSPX_TRAEFIK_TOKEN", "wrong-token-123"}});
  EXPECT_EQ(bad.exit_code, 2) << bad.err;
  EXPECT_NE(bad.err.find("refused the credentials"), std::string::npos) << bad.err;
  EXPECT_EQ(bad.err.find("wrong-token-123"), std::string::npos) << bad.err;  // secrets never printed
  EXPECT_EQ(SnapshotDir(dyn_), before);
  // Directory not writable (read-only mount, so even root cannot write): exit 1, nothing written.
  std::vector<std::string> argv{HEADSHIFT_BINARY, "--config", config_path_, "route", "set", "hsa", "4"};
  auto ro = testing::RunProgram(testing::ReadOnlyDirArgv(dyn_, argv), {{"HSPX_TRAEFIK_TOKEN", kToken}});
  EXPECT_EQ(ro.exit_code, 1) << ro.err;
  EXPECT_NE(ro.err.find("Traefik provider directory " + dyn_ + " is not writable: Read-only file system"),
            std::string::npos)
      << ro.err;
  EXPECT_EQ(SnapshotDir(dyn_), before);
  // API unreachable: exit 1, nothing written.
  WriteConfig("http://127.0.0.1:" + std::to_string(testing::FreePort()));
  auto down = Cli({"route", "set", "hsa", "4"});
  EXPECT_EQ(down.exit_code, 1) << down.err;
  EXPECT_NE(down.err.find("Traefik API unreachable"), std::string::npos) << down.err;
  EXPECT_EQ(SnapshotDir(dyn_), before);
}

TEST_F(TraefikRoutesTest, CliSetNotLiveRestoresThePreviousRoute) {
  RouteHsaTo3();
  DirSnapshot before = SnapshotDir(dyn_);
  fake_->SetServerDown("http://127.0.0.1:18084");
  WriteConfig(fake_->url(), "HSPX_TRAEFIK_TOKEN", "");
  testing::WriteFile(config_path_, ReadWholeFile(config_path_).replace(
                                       ReadWholeFile(config_path_).find("route_live_ms: 5000"), 19,
                                       "route_live_ms: 500"));
  auto run = Cli({"--json", "route", "set", "hsa", "4"});
  EXPECT_EQ(run.exit_code, 1) << run.out << run.err;
  auto j = nlohmann::json::parse(run.out);
  EXPECT_EQ(j["restored"], true);
  EXPECT_EQ(j["live"], false);
  EXPECT_EQ(SnapshotDir(dyn_), before);
}

}  // namespace
}  // namespace headshift
