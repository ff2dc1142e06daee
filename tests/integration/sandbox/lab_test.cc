// The sandbox lab end to end, driven through the `headshift sandbox` CLI as scripts and the e2e tests
// drive it: real PostgreSQL, HAProxy, network namespaces, veths, nftables NAT, stand-ins and fleet.
//   - every client is served by its tenant's cluster; the written config parses and names the lab;
//   - a hand-made migration (rows copied to cluster 4, HAProxy map entry set over the runtime socket,
//     the tenant's sessions reset with `ss -K` in the edge netns) moves all of hsa's clients to
//     cluster 4 with zero rejections while hsb/hsc are never disconnected;
//   - a client whose row is missing is rejected (and keeps being rejected);
//   - cached stand-ins reject rows copied after start until the configured reload_command runs;
//   - the lb namespace really NATs (conntrack) and the edge sees only its address;
//   - `down` leaves no namespace, veth, process or file behind; a failing cleanup step is reported
//     and the rest still removed; a dead lab of the same name, or of the sweep prefix, is swept by `up`.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "common/atomic_file.h"
#include "common/config.h"
#include "common/http_client.h"
#include "common/pg.h"
#include "common/subprocess.h"
#include "controlplane/headscale_client.h"
#include "sandbox/haproxy_ctl.h"
#include "sandbox/lab.h"
#include "sandbox/process.h"
#include "tests/fixtures/cli_runner.h"

namespace headshift::sandbox {
namespace {

namespace fs = std::filesystem;
using headshift::testing::RunHeadshift;
using headshift::testing::RunProgram;

nlohmann::json Json(const std::string& s) {
  auto j = nlohmann::json::parse(s, nullptr, false);
  return j.is_discarded() ? nlohmann::json::object() : j;
}

std::string Secret(const std::string& path) {
  std::string s = RunProgram({"cat", path}).out;
  while (!s.empty() && s.back() == '\n') s.pop_back();
  return s;
}

// Pids whose command line mentions `needle` (the lab's unique state dir).
std::vector<pid_t> PidsOfArg(const std::string& needle) {
  std::vector<pid_t> out;
  for (const auto& e : fs::directory_iterator("/proc")) {
    std::string n = e.path().filename().string();
    if (n.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream in(e.path().string() + "/cmdline");
    std::string cmd((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::replace(cmd.begin(), cmd.end(), '\0', ' ');
    if (cmd.find(needle) != std::string::npos) out.push_back(std::stoi(n));
  }
  return out;
}

// No namespace of lab `name` and (unless "") no root veth with `link_prefix` is left on the host.
void ExpectNoNetnsOrLinksOf(const std::string& name, const std::string& link_prefix) {
  for (const auto& e : fs::directory_iterator("/run/netns")) {
    EXPECT_NE(e.path().filename().string().rfind("sandbox-" + name + "-", 0), 0u) << e.path();
  }
  if (link_prefix.empty()) return;
  for (const auto& e : fs::directory_iterator("/sys/class/net")) {
    EXPECT_NE(e.path().filename().string().rfind(link_prefix, 0), 0u) << e.path();
  }
}

class LabTest : public ::testing::Test {
 protected:
  void Up(const std::vector<std::string>& flags, const std::string& suffix) {
    name_ = "sbt" + std::to_string(getpid()) + suffix;
    std::vector<std::string> args = {"--json", "sandbox", "up", "--name", name_};
    args.insert(args.end(), flags.begin(), flags.end());
    auto r = RunHeadshift(args);
    ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
    lab_ = Json(r.out);
    ASSERT_EQ(lab_.value("name", ""), name_);
    dir_ = lab_["state_dir"].get<std::string>();
    for (const auto& p : lab_["processes"]) pids_.push_back({p["pid"].get<pid_t>(), p["start_time"].get<int64_t>()});
  }
  void TearDown() override {
    if (!name_.empty() && !downed_) RunHeadshift({"sandbox", "down", "--name", name_});
  }
  nlohmann::json Status(const std::vector<std::string>& extra = {}, int* exit_code = nullptr) {
    std::vector<std::string> args = {"--json", "sandbox", "status", "--name", name_};
    args.insert(args.end(), extra.begin(), extra.end());
    auto r = RunHeadshift(args);
    if (exit_code) *exit_code = r.exit_code;
    return Json(r.out);
  }
  std::unique_ptr<PgConn> Db(const std::string& dsn_file) {
    auto c = PgConn::Connect(Secret(dsn_file));
    EXPECT_TRUE(c.ok()) << c.status().ToString();
    return c.ok() ? std::move(*c) : nullptr;
  }
  // Copies `tenant`'s node rows to cluster `to` in `dst` (what a migration's copy step does).
  void CopyNodes(PgConn& src, PgConn& dst, const std::string& tenant, const std::string& to) {
    auto rows = src.Exec(
        "SELECT n.machine_key, n.node_key, n.disco_key, n.endpoints, n.ipv4, n.ipv6, n.hostname, n.given_name "
        "FROM nodes n JOIN users u ON u.id = n.user_id WHERE u.name = $1 ORDER BY n.id",
        {tenant});
    ASSERT_TRUE(rows.ok());
    auto user = dst.Exec("SELECT id FROM users WHERE name = $1", {tenant});
    ASSERT_TRUE(user.ok());
    std::string user_id;
    if (user->rows() > 0) {
      user_id = user->Get(0, 0);
    } else {
      auto u = dst.Exec("INSERT INTO users (name, cluster_id, created_at) VALUES ($1, $2, now()) RETURNING id", {tenant, to});
      ASSERT_TRUE(u.ok()) << u.status().ToString();
      user_id = u->Get(0, 0);
    }
    for (int i = 0; i < rows->rows(); ++i) {
      std::vector<std::string> p;
      for (int c = 0; c < 8; ++c) p.push_back(rows->Get(i, c));
      p.push_back(user_id);
      p.push_back(to);
      auto ins = dst.Exec(
          "INSERT INTO nodes (machine_key, node_key, disco_key, endpoints, ipv4, ipv6, hostname, given_name, user_id, "
          "cluster_id, register_method, last_seen, created_at, updated_at) "
          "VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,'authkey',now(),now(),now())",
          p);
      ASSERT_TRUE(ins.ok()) << ins.status().ToString();
    }
  }
  // The by-hand route flip over HAProxy's runtime socket (what an operator does with socat).
  void SetRoute(const std::string& tenant, const std::string& cluster) {
    auto r = HaproxyCommand(lab_["edge"]["haproxy_socket"], "set map " + lab_["edge"]["map_file"].get<std::string>() + " " +
                                                                tenant + ".demo.com headscale-cluster" + cluster);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    auto get = HaproxyCommand(lab_["edge"]["haproxy_socket"],
                              "get map " + lab_["edge"]["map_file"].get<std::string>() + " " + tenant + ".demo.com");
    ASSERT_TRUE(get.ok());
    EXPECT_NE(get->find("headscale-cluster" + cluster), std::string::npos) << *get;
  }
  // The by-hand session reset: ss -K in the edge netns for client sources in `cidr`. Returns the count.
  int KillSessions(const std::string& cidr) {
    auto r = RunProgram({"ip", "netns", "exec", lab_["edge"]["netns"], "ss", "-K", "-Htn", "state", "established",
                         "( sport = :80 or sport = :443 )", "dst", cidr});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    int lines = 0;
    for (char c : r.out) lines += c == '\n';
    return lines;
  }
  void DownAndExpectNothingLeft() {
    auto r = RunHeadshift({"--json", "sandbox", "down", "--name", name_});
    ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
    downed_ = true;
    ExpectNoNetnsOrLinksOf(name_, lab_["link_prefix"]);
    for (const auto& [pid, start] : pids_) EXPECT_FALSE(ProcessAlive(pid, start)) << "pid " << pid << " survived down";
    EXPECT_FALSE(fs::exists(dir_)) << dir_;
    int code = 0;
    auto st = Status({}, &code);
    EXPECT_EQ(code, 2);
    EXPECT_EQ(st.value("up", true), false);
  }

  std::string name_, dir_;
  nlohmann::json lab_;
  std::vector<std::pair<pid_t, int64_t>> pids_;
  bool downed_ = false;
};

TEST_F(LabTest, HandMigrationMovesOneTenantWithoutRejectionsOrCollateral) {
  // 3 tenants x 8 devices, 10 clients per fleet process -> 3 shards.
  ASSERT_NO_FATAL_FAILURE(Up({"--devices", "8", "--clients-per-process", "10", "--disconnect-grace-ms", "500"}, "m"));
  EXPECT_EQ(lab_["fleet"]["shards"], 3);
  auto st = Status();
  ASSERT_TRUE(st["fleet"]["all_connected"].get<bool>()) << st.dump();
  const std::map<std::string, std::string> home = {{"hsa", "3"}, {"hsb", "4"}, {"hsc", "3"}};
  for (const auto& [tenant, cluster] : home) {
    const auto& t = st["tenants"][tenant];
    EXPECT_EQ(t["clients"], 8) << tenant;
    EXPECT_EQ(t["connected_by_cluster"], nlohmann::json({{cluster, 8}})) << tenant;
    EXPECT_EQ(t["rejections"], 0) << tenant;
  }
  // The written config is headshift's own format, pointing at this lab.
  auto cfg = LoadConfig(lab_["config"]);
  ASSERT_TRUE(cfg.ok()) << cfg.status().ToString();
  ASSERT_EQ(cfg->clusters.size(), 2u);
  EXPECT_EQ(cfg->proxy.haproxy.runtime_socket, dir_ + "/haproxy.sock");
  EXPECT_EQ(cfg->sessions.hosts.at(0).netns, "sandbox-" + name_ + "-edge");
  EXPECT_TRUE(cfg->sessions.hosts.at(0).conntrack_netns.empty());
  // control_url is reachable from the root netns, with the API key the config names.
  HeadscaleClient api4(cfg->clusters[1].control_url, Secret(cfg->clusters[1].api_key.file), 2000);
  auto before = api4.ListNodes("hsa");
  ASSERT_TRUE(before.ok()) << before.status().ToString();
  EXPECT_TRUE(before->empty());

  // Migrate hsa 3 -> 4 by hand.
  auto db = Db(lab_["postgres"]["dsn_file"]);
  ASSERT_TRUE(db);
  ASSERT_NO_FATAL_FAILURE(CopyNodes(*db, *db, "hsa", "4"));
  ASSERT_NO_FATAL_FAILURE(SetRoute("hsa", "4"));
  EXPECT_EQ(KillSessions("198.18.0.0/20"), 8);  // hsa's public addresses (tenant 0: 198.18.0.1 + i)
  int code = 0;
  st = Status({"--tenant", "hsa", "--on-cluster", "4", "--timeout", "15"}, &code);
  ASSERT_EQ(code, 0) << st.dump();
  const auto& a = st["tenants"]["hsa"];
  EXPECT_EQ(a["connected_by_cluster"], nlohmann::json({{"4", 8}}));
  EXPECT_EQ(a["rejections"], 0);
  EXPECT_EQ(a["disconnected_clients"], 8);
  EXPECT_EQ(a["reconnects"], 8);
  EXPECT_EQ(a["interruption_ms"]["count"], 8);
  EXPECT_GE(a["interruption_ms"]["max"].get<int64_t>(), a["interruption_ms"]["p50"].get<int64_t>());
  for (const char* other : {"hsb", "hsc"}) {
    EXPECT_EQ(st["tenants"][other]["disconnected_clients"], 0) << other;
    EXPECT_EQ(st["tenants"][other]["disconnects"], 0) << other;
    EXPECT_EQ(st["tenants"][other]["connected"], 8) << other;
  }
  // Cluster 4's API now shows hsa's nodes online (what the orchestrator's `reconnected` step reads).
  auto after = api4.ListNodes("hsa");
  ASSERT_TRUE(after.ok());
  ASSERT_EQ(after->size(), 8u);
  for (const auto& n : *after) EXPECT_TRUE(n.online) << n.name;

  // A client whose row is missing is rejected: delete hsc-dev-0 (cluster 3), reset hsc's sessions.
  auto del = db->Exec("DELETE FROM nodes WHERE given_name = 'hsc-dev-0' RETURNING id");
  ASSERT_TRUE(del.ok());
  ASSERT_EQ(del->rows(), 1);
  EXPECT_EQ(KillSessions("198.18.32.0/20"), 8);  // tenant 2: 198.18.32.1 + i
  nlohmann::json c;
  for (int i = 0; i < 100; ++i) {
    c = Status()["tenants"]["hsc"];
    if (c["rejections"].get<int>() >= 2 && c["connected"] == 7) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_EQ(c["connected"], 7);
  EXPECT_EQ(c["rejected_clients"], 1);
  EXPECT_GE(c["rejections"].get<int>(), 2);  // tailscale keeps retrying with backoff
  ASSERT_FALSE(c["problems"].empty());
  EXPECT_EQ(c["problems"][0]["name"], "hsc-dev-0");
  EXPECT_EQ(c["problems"][0]["last_error"], "ERR 404 node not found");
  // Still nothing touched hsb.
  EXPECT_EQ(Status()["tenants"]["hsb"]["disconnects"], 0);

  // reset-stats zeroes the counters.
  auto reset = RunHeadshift({"sandbox", "reset-stats", "--name", name_});
  ASSERT_EQ(reset.exit_code, 0) << reset.err;
  EXPECT_EQ(Status()["tenants"]["hsa"]["disconnects"], 0);

  DownAndExpectNothingLeft();
}

TEST_F(LabTest, CachedStandinRejectsCopiedRowsUntilReloadCommand) {
  ASSERT_NO_FATAL_FAILURE(Up({"--devices", "6", "--lookup", "cached", "--layout", "split", "--cluster-id-type", "text",
                              "--keepalive-ms", "300"},
                             "c"));
  auto cfg = LoadConfig(lab_["config"]);
  ASSERT_TRUE(cfg.ok()) << cfg.status().ToString();
  EXPECT_EQ(cfg->database.layout, DbLayout::kSplit);
  const ClusterConfig* c4 = cfg->FindCluster("4");
  ASSERT_NE(c4, nullptr);
  EXPECT_TRUE(c4->cached_nodes);
  ASSERT_EQ(c4->reload_command.size(), 3u);
  EXPECT_EQ(c4->reload_command[0], "kill");

  auto src = Db(cfg->FindCluster("3")->dsn.file);
  auto dst = Db(c4->dsn.file);
  ASSERT_TRUE(src && dst);
  ASSERT_NO_FATAL_FAILURE(CopyNodes(*src, *dst, "hsa", "4"));
  HeadscaleClient api4(c4->control_url, Secret(c4->api_key.file), 2000);
  EXPECT_TRUE(api4.ListNodes("hsa")->empty());  // the NodeStore has not seen the copy

  ASSERT_NO_FATAL_FAILURE(SetRoute("hsa", "4"));
  EXPECT_EQ(KillSessions("198.18.0.0/20"), 6);
  nlohmann::json a;
  for (int i = 0; i < 100; ++i) {
    a = Status()["tenants"]["hsa"];
    if (a["rejected_clients"] == 6) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_EQ(a["rejected_clients"], 6);
  EXPECT_EQ(a["connected"], 0);

  auto reload = RunArgv(c4->reload_command, 5000);
  ASSERT_TRUE(reload.ok());
  EXPECT_EQ(reload->exit_code, 0) << reload->output;
  int code = 0;
  auto st = Status({"--tenant", "hsa", "--on-cluster", "4", "--timeout", "20"}, &code);
  ASSERT_EQ(code, 0) << st.dump();
  EXPECT_EQ(api4.ListNodes("hsa")->size(), 6u);
  for (const char* other : {"hsb", "hsc"}) EXPECT_EQ(st["tenants"][other]["disconnects"], 0) << other;
  DownAndExpectNothingLeft();
}

TEST_F(LabTest, LbNamespaceNatsClientsAndSharedAddressesExist) {
  ASSERT_NO_FATAL_FAILURE(Up({"--devices", "8", "--lb", "--shared-nat-share", "0.25", "--noise-keys", "different"}, "l"));
  auto cfg = LoadConfig(lab_["config"]);
  ASSERT_TRUE(cfg.ok()) << cfg.status().ToString();
  EXPECT_EQ(cfg->sessions.hosts.at(0).conntrack_netns, "sandbox-" + name_ + "-lb");
  // Different Noise keys per cluster, as requested.
  HeadscaleClient k3(cfg->FindCluster("3")->control_url, "", 2000), k4(cfg->FindCluster("4")->control_url, "", 2000);
  ASSERT_TRUE(k3.NoiseKey().ok() && k4.NoiseKey().ok());
  EXPECT_NE(*k3.NoiseKey(), *k4.NoiseKey());

  auto st = Status({"--wait-connected", "--timeout", "10"});
  ASSERT_TRUE(st["fleet"]["all_connected"].get<bool>()) << st.dump();
  // HAProxy sees only the lb's NAT address.
  auto ss = RunProgram({"ip", "netns", "exec", lab_["edge"]["netns"], "ss", "-Htn", "state", "established",
                        "( sport = :80 or sport = :443 )"});
  int lines = 0;
  for (size_t pos = 0; (pos = ss.out.find('\n', pos)) != std::string::npos; ++pos) ++lines;
  EXPECT_EQ(lines, 24);
  EXPECT_EQ(ss.out.find("198.18."), std::string::npos) << ss.out;
  EXPECT_NE(ss.out.find(lab_["lb"]["nat_address"].get<std::string>()), std::string::npos);
  // The lb's conntrack maps client addresses (including the shared NAT address of hsa+hsb) to them.
  auto ct = RunProgram({"ip", "netns", "exec", lab_["lb"]["netns"], "conntrack", "-L", "-p", "tcp"});
  EXPECT_NE(ct.out.find("src=198.18.0."), std::string::npos) << ct.out;
  EXPECT_NE(ct.out.find("src=198.19.255.1 "), std::string::npos) << ct.out;
  EXPECT_NE(ct.out.find("dst=" + lab_["lb"]["nat_address"].get<std::string>()), std::string::npos);
  const auto& tenants = lab_["tenants"];
  EXPECT_EQ(tenants[0]["shared_address"], "198.19.255.1");
  EXPECT_EQ(tenants[1]["shared_address"], "198.19.255.1");
  EXPECT_EQ(tenants[0]["shared_devices"], 2);
  DownAndExpectNothingLeft();
}

// A lab left behind (its lab.json lost, processes still running) is removed by the next `up` of the
// same name; SIGINT during `up` removes what it had made.
TEST_F(LabTest, LeftoversAndInterruptsAreCleanedUp) {
  ASSERT_NO_FATAL_FAILURE(Up({"--devices", "2", "--tenants", "2"}, "r"));
  auto old_pids = pids_;
  ASSERT_TRUE(fs::remove(dir_ + "/lab.json"));  // as if the previous run died before recording anything
  ASSERT_NO_FATAL_FAILURE(Up({"--devices", "2", "--tenants", "2"}, "r"));
  for (const auto& [pid, start] : old_pids) EXPECT_FALSE(ProcessAlive(pid, start)) << "old pid " << pid;
  int ns = 0;
  for (const auto& e : fs::directory_iterator("/run/netns")) ns += e.path().filename().string().rfind("sandbox-" + name_ + "-", 0) == 0;
  EXPECT_EQ(ns, 4);  // clients, edge, c3, c4: one set
  EXPECT_TRUE(Status({"--wait-connected", "--timeout", "10"})["fleet"]["all_connected"].get<bool>());
  DownAndExpectNothingLeft();

  // SIGINT while `up` runs (PostgreSQL is being initialised by then).
  std::string name = "sbt" + std::to_string(getpid()) + "i";
  pid_t child = fork();
  if (child == 0) {
    execl(HEADSHIFT_BINARY, HEADSHIFT_BINARY, "sandbox", "up", "--name", name.c_str(), "--devices", "2",
          static_cast<char*>(nullptr));
    _exit(127);
  }
  // Interrupt once the network is made and before PostgreSQL is up: lab.json records each step
  // as it completes. (A fixed sleep raced a fast machine, where `up` had finished by then.)
  std::string record = DefaultStateDir(name) + "/lab.json";
  for (int i = 0; i < 3000; ++i) {
    auto text = ReadFile(record);
    auto lab = text.ok() ? nlohmann::json::parse(*text, nullptr, false) : nlohmann::json();
    if (lab.is_object() && lab.contains("timings_ms") && lab["timings_ms"].contains("network")) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  kill(child, SIGINT);
  int wst = 0;
  waitpid(child, &wst, 0);
  EXPECT_TRUE(WIFEXITED(wst) && WEXITSTATUS(wst) != 0) << wst;
  ExpectNoNetnsOrLinksOf(name, "");
  EXPECT_FALSE(fs::exists(DefaultStateDir(name)));
  EXPECT_TRUE(PidsOfArg(DefaultStateDir(name) + "/").empty());
}

// Teardown surfaces each cleanup error and still removes the rest: one of the lab's namespaces is
// already gone (deleted behind its back) and a mount inside the state dir makes part of it
// unremovable. `down` must stop every process and remove every namespace and veth, report the
// gone namespace and name the busy path in its (non-zero) result, and keep lab.json so the next
// `down`, once the mount is gone, removes the rest.
TEST_F(LabTest, TeardownReportsEachErrorAndStillRemovesTheRest) {
  ASSERT_NO_FATAL_FAILURE(Up({"--devices", "2", "--tenants", "2"}, "e"));
  std::string gone_ns = "sandbox-" + name_ + "-c4";
  ASSERT_EQ(RunProgram({"ip", "netns", "del", gone_ns}).exit_code, 0);
  std::string busy = dir_ + "/logs/busy";
  fs::create_directories(busy);
  ASSERT_EQ(RunProgram({"mount", "-t", "tmpfs", "-o", "size=1m", "headshift-test", busy}).exit_code, 0);

  auto r = RunHeadshift({"--json", "sandbox", "down", "--name", name_});
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  std::string said = r.out + r.err;
  EXPECT_NE(said.find("removing " + busy), std::string::npos) << said;
  EXPECT_NE(said.find("already gone: netns " + gone_ns), std::string::npos) << said;
  // The rest is gone all the same.
  ExpectNoNetnsOrLinksOf(name_, lab_["link_prefix"]);
  for (const auto& [pid, start] : pids_) EXPECT_FALSE(ProcessAlive(pid, start)) << "pid " << pid << " survived down";
  EXPECT_FALSE(fs::exists(dir_ + "/secrets"));
  EXPECT_TRUE(fs::exists(dir_ + "/lab.json")) << "the record must stay while something of the lab is left";

  ASSERT_EQ(RunProgram({"umount", busy}).exit_code, 0);
  DownAndExpectNothingLeft();
}

// A dead lab (every process killed, its namespaces, veths and files left) is swept by the next `up`
// of the same name; a veth whose name has the same 6-hex prefix but belongs to another lab (its
// alias says so) is left alone.
TEST_F(LabTest, DeadLabOfTheSameNameIsSweptByUp) {
  ASSERT_NO_FATAL_FAILURE(Up({"--devices", "2", "--tenants", "2"}, "d"));
  auto old_pids = pids_;
  for (const auto& [pid, start] : old_pids) kill(pid, SIGKILL);
  std::string prefix = lab_["link_prefix"];
  // A stray veth pair of this lab (root side only, as a killed `up` may leave) and one of another lab.
  ASSERT_EQ(RunProgram({"ip", "link", "add", prefix + "x9", "type", "veth", "peer", "name", prefix + "y9"}).exit_code, 0);
  ASSERT_EQ(RunProgram({"ip", "link", "add", prefix + "z9", "type", "veth", "peer", "name", prefix + "w9"}).exit_code, 0);
  for (const char* l : {"z9", "w9"}) {
    ASSERT_EQ(RunProgram({"ip", "link", "set", "dev", prefix + l, "alias", "sandbox-another-lab-"}).exit_code, 0);
  }
  pids_.clear();
  ASSERT_NO_FATAL_FAILURE(Up({"--devices", "2", "--tenants", "2"}, "d"));
  for (const auto& [pid, start] : old_pids) EXPECT_FALSE(ProcessAlive(pid, start)) << "old pid " << pid;
  EXPECT_FALSE(fs::exists("/sys/class/net/" + prefix + "x9"));
  EXPECT_FALSE(fs::exists("/sys/class/net/" + prefix + "y9"));
  EXPECT_TRUE(fs::exists("/sys/class/net/" + prefix + "z9")) << "another lab's veth was removed";
  RunProgram({"ip", "link", "del", prefix + "z9"});
  int ns = 0;
  for (const auto& e : fs::directory_iterator("/run/netns")) ns += e.path().filename().string().rfind("sandbox-" + name_ + "-", 0) == 0;
  EXPECT_EQ(ns, 4);  // clients, edge, c3, c4: one set
  EXPECT_TRUE(Status({"--wait-connected", "--timeout", "10"})["fleet"]["all_connected"].get<bool>());
  DownAndExpectNothingLeft();
}

// `up` with a sweep prefix removes the labs of that prefix whose owner (the process that ran their
// `up`) is gone, as a test run killed by a timeout leaves them, and leaves a lab whose owner lives.
TEST(LabSweep, DeadLabsOfTheSweepPrefixAreRemovedByUp) {
  std::string prefix = "sbt" + std::to_string(getpid()) + "s-";
  // Its owner is the CLI process, gone once `up` has returned.
  auto r = RunHeadshift({"--json", "sandbox", "up", "--name", prefix + "a", "--devices", "2", "--tenants", "2", "--no-fleet"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  nlohmann::json dead = Json(r.out);
  std::vector<std::pair<pid_t, int64_t>> dead_pids;
  for (const auto& p : dead["processes"]) dead_pids.push_back({p["pid"].get<pid_t>(), p["start_time"].get<int64_t>()});
  ASSERT_FALSE(dead_pids.empty());

  LabOptions o;
  o.name = prefix + "b";
  o.sweep_prefix = prefix;
  o.tenant_count = 2;
  o.devices = 2;
  o.fleet = false;
  auto b = LabUp(o);  // owned by this test process
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  EXPECT_EQ(b->json.value("swept", nlohmann::json::array()), nlohmann::json::array({prefix + "a"})) << b->json.dump();
  EXPECT_FALSE(fs::exists(DefaultStateDir(prefix + "a")));
  ExpectNoNetnsOrLinksOf(prefix + "a", dead["link_prefix"]);
  for (const auto& [pid, start] : dead_pids) EXPECT_FALSE(ProcessAlive(pid, start)) << "pid " << pid << " of the dead lab";

  o.name = prefix + "c";
  auto c = LabUp(o);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_FALSE(c->json.contains("swept")) << c->json.dump();
  EXPECT_TRUE(fs::exists(b->state_dir + "/lab.json")) << "a lab whose owner lives was swept";
  for (const auto& p : b->json["processes"]) {
    EXPECT_TRUE(ProcessAlive(p["pid"].get<pid_t>(), p["start_time"].get<int64_t>())) << p.dump();
  }
  auto down_c = LabDown(prefix + "c", c->state_dir);
  EXPECT_TRUE(down_c.ok()) << down_c.status().ToString();
  auto down_b = LabDown(prefix + "b", b->state_dir);
  EXPECT_TRUE(down_b.ok()) << down_b.status().ToString();
  EXPECT_FALSE(fs::exists(b->state_dir));
}

// Bad flags are refused before anything is made.
TEST(LabFlags, BadInputChangesNothing) {
  std::string name = "sbt" + std::to_string(getpid()) + "x";
  auto r = RunHeadshift({"--json", "sandbox", "up", "--name", name, "--layout", "sideways"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.out.find("--layout"), std::string::npos) << r.out;
  r = RunHeadshift({"sandbox", "up", "--name", "Bad_Name"});
  EXPECT_EQ(r.exit_code, 2);
  r = RunHeadshift({"sandbox", "up", "--name", name, "--tenant", "hsa:9"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("cluster '9'"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists("/run/netns/sandbox-" + name + "-edge"));
  EXPECT_FALSE(fs::exists(DefaultStateDir(name)));
}

}  // namespace
}  // namespace headshift::sandbox
