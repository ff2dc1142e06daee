// `headshift sessions list|kill` against real sockets in a real network namespace: IPv4, IPv6 and
// v4-mapped clients on a v4 listener, a dual-stack [::] listener and a listener on another port;
// idle and busy connections. Only the tenant's connections on the selected ports are reset.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <fcntl.h>
#include <sched.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>

#include <set>

#include "common/atomic_file.h"
#include "tests/fixtures/cli_runner.h"
#include "tests/integration/dataplane/netns_lab.h"

namespace headshift::testing {
namespace {

constexpr uint16_t kP = 4431;   // tenant port (IPv4 listener)
constexpr uint16_t kP6 = 4432;  // tenant port (dual-stack [::] listener)
constexpr uint16_t kQ = 4433;   // another port, never selected

class SessionsCliTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { RemoveStaleTestNetns(); }

  void SetUp() override {
    ns_ = std::make_unique<TestNetns>("s");
    for (const char* a : {"10.61.0.1/32", "10.61.1.1/32", "10.61.1.2/32", "10.61.2.1/32", "fd00:61::1/128",
                          "fd00:61:1::1/128", "fd00:61:1::2/128", "fd00:61:2::1/128"}) {
      ns_->AddLoopbackAddress(a);
    }
    lp_ = Listen(*ns_, "10.61.0.1", kP);
    lp6_ = Listen(*ns_, "::", kP6, /*dual_stack=*/true);
    lq_ = Listen(*ns_, "10.61.0.1", kQ);
    // Tenant (10.61.1.0/24, fd00:61:1::/64) on the selected ports.
    tenant_.push_back(Connect(*ns_, "10.61.1.1", "10.61.0.1", kP, lp_, "t-v4-idle"));
    tenant_.push_back(Connect(*ns_, "10.61.1.2", "10.61.0.1", kP, lp_, "t-v4-busy"));
    tenant_.push_back(Connect(*ns_, "10.61.1.1", "10.61.0.1", kP6, lp6_, "t-v4mapped"));
    tenant_.push_back(Connect(*ns_, "fd00:61:1::1", "fd00:61::1", kP6, lp6_, "t-v6-idle"));
    tenant_.push_back(Connect(*ns_, "fd00:61:1::2", "fd00:61::1", kP6, lp6_, "t-v6-busy"));
    MakeBusy(tenant_[1]);
    MakeBusy(tenant_[4]);
    // Everyone else, and the tenant on another port.
    others_.push_back(Connect(*ns_, "10.61.2.1", "10.61.0.1", kP, lp_, "o-v4-idle"));
    others_.push_back(Connect(*ns_, "10.61.2.1", "10.61.0.1", kP, lp_, "o-v4-busy"));
    others_.push_back(Connect(*ns_, "10.61.2.1", "10.61.0.1", kP6, lp6_, "o-v4mapped"));
    others_.push_back(Connect(*ns_, "fd00:61:2::1", "fd00:61::1", kP6, lp6_, "o-v6"));
    others_.push_back(Connect(*ns_, "fd00:61:2::1", "fd00:61::1", kP6, lp6_, "o-v6-busy"));
    others_.push_back(Connect(*ns_, "10.61.1.1", "10.61.0.1", kQ, lq_, "t-other-port"));
    MakeBusy(others_[1]);
    MakeBusy(others_[4]);
  }

  void TearDown() override {
    for (auto* v : {&tenant_, &others_}) {
      for (auto& c : *v) Close(c);
    }
    for (int fd : {lp_, lp6_, lq_}) close(fd);
    ns_.reset();
  }

  std::vector<std::string> KillArgs() const {
    return {"--json", "sessions", "kill", "--netns", ns_->name(), "--port", std::to_string(kP) + "," + std::to_string(kP6),
            "--client", "10.61.1.0/24", "--client", "fd00:61:1::/64"};
  }

  // The server-side (local, remote) pairs of the tenant's connections, as the kernel reports them.
  std::set<std::pair<std::string, std::string>> TenantTuples() const {
    std::set<std::pair<std::string, std::string>> s;
    for (const auto& c : tenant_) s.insert({ServerEndpoint(c), ClientEndpoint(c)});
    return s;
  }

  void ExpectAllAlive(std::vector<Conn>& conns) {
    for (auto& c : conns) EXPECT_EQ(Exchange(c), "") << c.label;
  }

  void ExpectListenersAccept() {
    EXPECT_EQ(ListenerAccepts(*ns_, "10.61.1.1", "10.61.0.1", kP, lp_), "");
    EXPECT_EQ(ListenerAccepts(*ns_, "fd00:61:1::1", "fd00:61::1", kP6, lp6_), "");
    EXPECT_EQ(ListenerAccepts(*ns_, "10.61.1.2", "10.61.0.1", kP6, lp6_), "");
    EXPECT_EQ(ListenerAccepts(*ns_, "10.61.1.1", "10.61.0.1", kQ, lq_), "");
  }

  std::unique_ptr<TestNetns> ns_;
  int lp_ = -1, lp6_ = -1, lq_ = -1;
  std::vector<Conn> tenant_, others_;
};

TEST_F(SessionsCliTest, KillResetsExactlyTheTenantsSessions) {
  CliRun r = RunHeadshift(KillArgs());
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["selected"], 5);
  EXPECT_EQ(j["reset"], 5);
  EXPECT_EQ(j["gone"], 0);
  EXPECT_EQ(j["failed"], 0);
  EXPECT_EQ(j["remaining"], 0);
  std::set<std::pair<std::string, std::string>> reported;
  for (const auto& s : j["sockets"]) {
    EXPECT_EQ(s["outcome"], "reset");
    EXPECT_EQ(s["state"], "ESTABLISHED");
    EXPECT_GT(s["cookie"].get<uint64_t>(), 0u);
    reported.insert({s["local"].get<std::string>(), s["remote"].get<std::string>()});
  }
  EXPECT_EQ(reported, TenantTuples());
  // The v4-mapped connection is reported as the kernel holds it: an inet6 socket.
  bool mapped = false;
  for (const auto& s : j["sockets"]) mapped = mapped || (s["family"] == "inet6" && s["remote"].get<std::string>().find("::ffff:10.61.1.1") != std::string::npos);
  EXPECT_TRUE(mapped) << j["sockets"].dump();

  for (auto& c : tenant_) {
    EXPECT_EQ(AwaitError(c.client), ECONNRESET) << c.label << " client";
    EXPECT_EQ(AwaitError(c.server), ECONNABORTED) << c.label << " server side";
  }
  ExpectAllAlive(others_);
  ExpectListenersAccept();

  // Nothing of the tenant is left: a second kill selects nothing.
  CliRun again = RunHeadshift(KillArgs());
  ASSERT_EQ(again.exit_code, 0) << again.out << again.err;
  EXPECT_EQ(nlohmann::json::parse(again.out)["selected"], 0);
}

TEST_F(SessionsCliTest, DryRunAndListChangeNothing) {
  auto args = KillArgs();
  args.push_back("--dry-run");
  CliRun dry = RunHeadshift(args);
  ASSERT_EQ(dry.exit_code, 0) << dry.out << dry.err;
  auto j = nlohmann::json::parse(dry.out);
  EXPECT_EQ(j["selected"], 5);
  EXPECT_EQ(j["reset"], 0);
  EXPECT_EQ(j["dry_run"], true);
  std::set<std::pair<std::string, std::string>> listed;
  for (const auto& s : j["sockets"]) {
    EXPECT_EQ(s["outcome"], "would_reset");
    listed.insert({s["local"].get<std::string>(), s["remote"].get<std::string>()});
  }
  EXPECT_EQ(listed, TenantTuples()) << "the dry run lists exactly what a kill would reset";

  // Listing without --client shows every session on the ports (5 tenant + 5 others on P/P6).
  CliRun list = RunHeadshift({"--json", "sessions", "list", "--netns", ns_->name(), "--port",
                              std::to_string(kP) + "," + std::to_string(kP6)});
  ASSERT_EQ(list.exit_code, 0) << list.out << list.err;
  EXPECT_EQ(nlohmann::json::parse(list.out)["selected"], 10);

  // Human output names each socket and the counts.
  CliRun text = RunHeadshift({"sessions", "list", "--netns", ns_->name(), "--port", std::to_string(kQ)});
  ASSERT_EQ(text.exit_code, 0) << text.err;
  EXPECT_NE(text.out.find("10.61.1.1:"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("selected 1, reset 0"), std::string::npos) << text.out;

  ExpectAllAlive(tenant_);
  ExpectAllAlive(others_);
}

TEST_F(SessionsCliTest, StateSelectionNeverIncludesListeners) {
  CliRun r = RunHeadshift({"--json", "sessions", "kill", "--netns", ns_->name(), "--port", std::to_string(kP),
                           "--client", "0.0.0.0/0", "--state", "listen"});
  EXPECT_EQ(r.exit_code, 2) << r.out;
  // Even "every IPv4 client, every state but listen" leaves the listener alone.
  CliRun all = RunHeadshift({"--json", "sessions", "kill", "--netns", ns_->name(), "--port", std::to_string(kQ),
                             "--client", "0.0.0.0/0", "--state", "established,time-wait,close-wait,syn-recv"});
  ASSERT_EQ(all.exit_code, 0) << all.out << all.err;
  EXPECT_EQ(nlohmann::json::parse(all.out)["reset"], 1);  // t-other-port
  EXPECT_EQ(AwaitError(others_[5].client), ECONNRESET);
  EXPECT_EQ(ListenerAccepts(*ns_, "10.61.2.1", "10.61.0.1", kQ, lq_), "");
}

TEST_F(SessionsCliTest, BadInputIsRefusedBeforeAnythingIsReset) {
  struct Case {
    std::vector<std::string> args;
    std::string named;
  };
  std::string ns = ns_->name(), p = std::to_string(kP);
  std::string missing = "hsdp" + std::to_string(getpid()) + "nope";
  std::vector<Case> cases = {
      {{"--netns", ns, "--port", p, "--client", "10.61.1.0/33"}, "10.61.1.0/33"},
      {{"--netns", ns, "--port", p, "--client", "10.61.1.1/24"}, "10.61.1.1/24"},
      {{"--netns", ns, "--port", p, "--client", "tenant-a"}, "tenant-a"},
      {{"--netns", ns, "--port", "0", "--client", "10.61.1.0/24"}, "'0'"},
      {{"--netns", ns, "--port", "70000", "--client", "10.61.1.0/24"}, "70000"},
      {{"--netns", ns, "--port", "https", "--client", "10.61.1.0/24"}, "https"},
      {{"--netns", ns, "--client", "10.61.1.0/24"}, "port"},
      {{"--netns", ns, "--port", p}, "client"},
      {{"--netns", missing, "--port", p, "--client", "10.61.1.0/24"}, missing},
      {{"--netns", "/proc/self/ns/uts", "--port", p, "--client", "10.61.1.0/24"}, "not a network namespace"},
      // An unset shell variable must not mean headshift's own namespace.
      {{"--netns", "", "--port", p, "--client", "10.61.1.0/24"}, "--netns"},
      {{"--netns", ns, "--conntrack-netns", "", "--port", p, "--client", "10.61.1.0/24"}, "--conntrack-netns"},
      {{"--netns", ns, "--port", p + ",", "--client", "10.61.1.0/24"}, p + ","},
      // A valid host first, a missing one second: the first must not be touched either.
      {{"--netns", ns, "--netns", missing, "--port", p, "--client", "10.61.1.0/24"}, missing},
      {{"--netns", ns, "--port", p, "--client", "10.61.1.0/24", "--max-rounds", "0"}, "max-rounds"},
      {{"--snapshot-in", "/nonexistent/hsdp.json"}, "/nonexistent/hsdp.json"},
  };
  for (const auto& c : cases) {
    std::vector<std::string> args{"--json", "sessions", "kill"};
    args.insert(args.end(), c.args.begin(), c.args.end());
    CliRun r = RunHeadshift(args);
    EXPECT_EQ(r.exit_code, 2) << c.named << ": " << r.out << r.err;
    auto j = nlohmann::json::parse(r.out, nullptr, false);
    ASSERT_FALSE(j.is_discarded()) << r.out;
    EXPECT_EQ(j["exit_code"], 2);
    EXPECT_NE(j["error"]["message"].get<std::string>().find(c.named), std::string::npos)
        << "message should name " << c.named << ": " << j["error"].dump();
    EXPECT_FALSE(j["error"]["hint"].get<std::string>().empty()) << j["error"].dump();
  }
  ExpectAllAlive(tenant_);
  ExpectAllAlive(others_);
}

TEST_F(SessionsCliTest, WithoutCapNetAdminExitsFiveAndResetsNothing) {
  std::vector<std::string> argv{"setpriv", "--inh-caps=-net_admin", "--bounding-set=-net_admin", HEADSHIFT_BINARY};
  auto args = KillArgs();
  argv.insert(argv.end(), args.begin(), args.end());
  CliRun r = RunProgram(argv);
  ASSERT_EQ(r.exit_code, 5) << r.out << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_NE(j["error"]["message"].get<std::string>().find("CAP_NET_ADMIN"), std::string::npos) << r.out;
  EXPECT_NE(j["error"]["hint"].get<std::string>().find("root"), std::string::npos) << r.out;
  ExpectAllAlive(tenant_);
  ExpectAllAlive(others_);
}

TEST_F(SessionsCliTest, HostsFromTheConfig) {
  auto example = ReadFile(std::string(HEADSHIFT_SOURCE_DIR) + "/playbooks/examples/headshift.yaml");
  ASSERT_TRUE(example.ok());
  std::string yaml = *example;
  for (auto [from, to] : {std::pair<std::string, std::string>{"netns: edge ", "netns: " + ns_->name() + " "},
                          {"ports: [80, 443]", "ports: [" + std::to_string(kP) + ", " + std::to_string(kP6) + "]"}}) {
    size_t at = yaml.find(from);
    ASSERT_NE(at, std::string::npos) << from;
    yaml.replace(at, from.size(), to);
  }
  std::string cfg = WriteTempFile("sessions-config.yaml", yaml);
  CliRun bad = RunHeadshift({"--json", "--config", cfg, "sessions", "kill", "--host", "nope", "--client", "10.61.1.0/24"});
  EXPECT_EQ(bad.exit_code, 2) << bad.out;
  EXPECT_NE(bad.out.find("'nope'"), std::string::npos) << bad.out;
  EXPECT_NE(bad.out.find("edge"), std::string::npos) << "the hint lists the known hosts: " << bad.out;

  CliRun r = RunHeadshift({"--json", "--config", cfg, "sessions", "kill", "--host", "edge", "--client", "10.61.1.0/24",
                           "--client", "fd00:61:1::/64"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["reset"], 5);
  EXPECT_EQ(j["hosts"][0]["host"], "edge");
  for (auto& c : tenant_) EXPECT_EQ(AwaitError(c.client), ECONNRESET) << c.label;
  ExpectAllAlive(others_);
}

// A process living in `ns`, as a proxy would; its /proc/PID/ns/net names the namespace.
pid_t HoldNamespace(const TestNetns& ns) {
  const std::string path = "/run/netns/" + ns.name();
  int ready[2];
  if (pipe(ready) != 0) throw std::runtime_error("pipe");
  pid_t pid = fork();
  if (pid == 0) {  // only async-signal-safe calls from here
    int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0 || setns(fd, CLONE_NEWNET) != 0) _exit(1);
    if (write(ready[1], "x", 1) != 1) _exit(1);
    pause();
    _exit(0);
  }
  close(ready[1]);
  char c = 0;
  ssize_t got = read(ready[0], &c, 1);
  close(ready[0]);
  if (pid < 0 || got != 1) throw std::runtime_error("could not start a process in " + path);
  return pid;
}

TEST_F(SessionsCliTest, NamespaceGivenAsAProcessPath) {
  pid_t holder = HoldNamespace(*ns_);
  auto args = KillArgs();
  args[4] = "/proc/" + std::to_string(holder) + "/ns/net";  // "--netns", <path>
  CliRun r = RunHeadshift(args);
  kill(holder, SIGKILL);
  waitpid(holder, nullptr, 0);
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["reset"], 5);
  std::set<std::pair<std::string, std::string>> reported;
  for (const auto& s : j["sockets"]) reported.insert({s["local"].get<std::string>(), s["remote"].get<std::string>()});
  EXPECT_EQ(reported, TenantTuples());
  for (auto& c : tenant_) EXPECT_EQ(AwaitError(c.client), ECONNRESET) << c.label;
  ExpectAllAlive(others_);
}

TEST_F(SessionsCliTest, SeveralNamespacesInOneCall) {
  TestNetns second("s2");
  second.AddLoopbackAddress("10.61.0.1/32");
  second.AddLoopbackAddress("10.61.1.1/32");
  second.AddLoopbackAddress("10.61.2.1/32");
  int l2 = Listen(second, "10.61.0.1", kP);
  Conn t2 = Connect(second, "10.61.1.1", "10.61.0.1", kP, l2, "second-tenant");
  Conn o2 = Connect(second, "10.61.2.1", "10.61.0.1", kP, l2, "second-other");
  auto args = KillArgs();
  args.insert(args.begin() + 5, {"--netns", second.name()});
  CliRun r = RunHeadshift(args);
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["selected"], 6);
  EXPECT_EQ(j["reset"], 6);
  ASSERT_EQ(j["hosts"].size(), 2u);
  EXPECT_EQ(j["hosts"][0]["reset"], 5);
  EXPECT_EQ(j["hosts"][1]["reset"], 1);
  EXPECT_EQ(j["hosts"][1]["netns"], second.name());
  EXPECT_EQ(AwaitError(t2.client), ECONNRESET);
  EXPECT_EQ(Exchange(o2), "");
  for (auto& c : tenant_) EXPECT_EQ(AwaitError(c.client), ECONNRESET) << c.label;
  ExpectAllAlive(others_);
  Close(t2);
  Close(o2);
  close(l2);
}

}  // namespace
}  // namespace headshift::testing
