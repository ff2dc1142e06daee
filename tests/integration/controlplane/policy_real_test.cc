// Against two real headscale v0.29.3 nodes (database policy mode, sqlite, loopback): a tenant's part of
// node A's policy is written with SetPolicy, read back with GetPolicy, split out, merged into node B and
// removed from A; the parity facts are read from both nodes (/key, /version, /debug/config, /debug/derp)
// and /debug/filter proves the tenant's devices reach each other the same way on both only once its part
// is on B. Skipped, with the reason, when the real peers are not installed.
#include <gtest/gtest.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "common/http_client.h"
#include "common/subprocess.h"
#include "controlplane/headscale_client.h"
#include "controlplane/node_facts.h"
#include "controlplane/node_parity.h"
#include "controlplane/packet_filter.h"
#include "controlplane/policy_diff.h"
#include "controlplane/tenant_policy.h"

extern char** environ;

namespace headshift {
namespace {

namespace fs = std::filesystem;
const char* kHeadscale = "/var/cache/headshift-peers/bin/headscale";

int FreeLoopbackPort() {
  int s = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(a);
  if (bind(s, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0 ||
      getsockname(s, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    close(s);
    return -1;
  }
  close(s);
  return ntohs(a.sin_port);
}

// One headscale process with its own directory, config and ports; stopped (SIGTERM) on destruction.
class RealHeadscale {
 public:
  RealHeadscale(const fs::path& dir, const std::string& base_domain) : dir_(dir) {
    fs::create_directories(dir_);
    port_ = FreeLoopbackPort();
    metrics_port_ = FreeLoopbackPort();
    grpc_port_ = FreeLoopbackPort();
    std::ofstream(dir_ / "derp.yaml") << "regions:\n  900:\n    regionid: 900\n    regioncode: lab\n"
                                         "    regionname: lab relay\n    nodes:\n    - name: 900a\n"
                                         "      regionid: 900\n      hostname: derp.test\n      ipv4: 127.0.0.9\n"
                                         "      stunport: 3478\n      derpport: 8443\n";
    std::ofstream(dir_ / "config.yaml")
        << "server_url: " << url() << "\nlisten_addr: 127.0.0.1:" << port_
        << "\nmetrics_listen_addr: 127.0.0.1:" << metrics_port_ << "\ngrpc_listen_addr: 127.0.0.1:" << grpc_port_
        << "\ngrpc_allow_insecure: false\nnoise:\n  private_key_path: " << (dir_ / "noise_private.key").string()
        // Both nodes allocate from one range, in registration order: the tenant's devices get the same
        // addresses on both, as after a move that keeps them.
        << "\nprefixes:\n  v4: 100.64.0.0/24\n  v6: fd7a:115c:a1e0::/64\n  allocation: sequential\n"
        << "derp:\n  server:\n    enabled: false\n  urls: []\n  paths: [" << (dir_ / "derp.yaml").string()
        << "]\n  auto_update_enabled: false\ndisable_check_updates: true\n"
        << "database:\n  type: sqlite\n  sqlite:\n    path: " << (dir_ / "db.sqlite").string()
        << "\n    write_ahead_log: true\nlog:\n  level: info\n  format: text\npolicy:\n  mode: database\n"
        << "dns:\n  magic_dns: true\n  base_domain: " << base_domain
        << "\n  override_local_dns: false\n  nameservers:\n    global: []\n"
        << "unix_socket: " << (dir_ / "headscale.sock").string() << "\nunix_socket_permission: \"0770\"\n"
        << "logtail:\n  enabled: false\ntaildrop:\n  enabled: false\n";
  }
  ~RealHeadscale() {
    if (pid_ > 0) {
      kill(pid_, SIGTERM);
      int st = 0;
      waitpid(pid_, &st, 0);
    }
  }

  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  std::string debug_url() const { return "http://127.0.0.1:" + std::to_string(metrics_port_); }
  const fs::path& dir() const { return dir_; }

  ::testing::AssertionResult Start() {
    std::string cfg = (dir_ / "config.yaml").string(), log = (dir_ / "headscale.log").string();
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    std::vector<std::string> argv = {kHeadscale, "-c", cfg, "serve"};
    std::vector<char*> cargv;
    for (auto& a : argv) cargv.push_back(a.data());
    cargv.push_back(nullptr);
    int rc = posix_spawn(&pid_, kHeadscale, &fa, nullptr, cargv.data(), environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0) return ::testing::AssertionFailure() << "posix_spawn headscale: " << rc;
    HttpClient http;
    for (int i = 0; i < 300; ++i) {
      auto r = http.Get(url() + "/health", HttpRequestOptions{});
      if (r.ok() && r->status == 200) return ::testing::AssertionSuccess();
      int st = 0;
      if (waitpid(pid_, &st, WNOHANG) == pid_) {
        pid_ = -1;
        return ::testing::AssertionFailure() << "headscale exited; log:\n" << Log();
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return ::testing::AssertionFailure() << "headscale did not answer /health in 30 s; log:\n" << Log();
  }

  std::string Log() const {
    std::ifstream f(dir_ / "headscale.log");
    return std::string(std::istreambuf_iterator<char>(f), {});
  }

  // Runs the headscale CLI against this node (unix socket); the output, or a failure with it.
  StatusOr<std::string> Cli(std::vector<std::string> args) const {
    std::vector<std::string> argv = {kHeadscale, "-c", (dir_ / "config.yaml").string()};
    argv.insert(argv.end(), args.begin(), args.end());
    auto r = RunArgv(argv, 60000);
    if (!r.ok()) return r.status();
    if (r->exit_code != 0) return Status::Failed("headscale " + args[0] + ": " + r->output);
    return r->output;
  }

  // Registers a device of `user` the way `headscale debug create-node` + `auth register` do.
  ::testing::AssertionResult AddDevice(const std::string& user, const std::string& name) {
    static int n = 0;
    char rid[25];
    snprintf(rid, sizeof(rid), "%024d", ++n + getpid() % 1000 * 1000);
    std::string auth_id = std::string("hskey-authreq-") + rid;
    auto c = Cli({"debug", "create-node", "--name", name, "--user", user, "--key", auth_id});
    if (!c.ok()) return ::testing::AssertionFailure() << c.status().ToString();
    auto r = Cli({"auth", "register", "--auth-id", auth_id, "--user", user});
    if (!r.ok()) return ::testing::AssertionFailure() << r.status().ToString();
    return ::testing::AssertionSuccess();
  }

  // The addresses of `user`'s devices as the API lists them.
  std::vector<std::string> Ips(const std::string& api_key, const std::string& user) const {
    HttpClient http;
    HttpRequestOptions o;
    o.bearer_token = api_key;
    auto r = http.Get(url() + "/api/v1/node?user=" + user, o);
    std::vector<std::string> out;
    if (!r.ok() || r->status != 200) return out;
    auto j = nlohmann::json::parse(r->body);
    for (const auto& n : j["nodes"]) {
      for (const auto& ip : n["ipAddresses"]) out.push_back(ip.get<std::string>());
    }
    return out;
  }

 private:
  fs::path dir_;
  int port_ = 0, metrics_port_ = 0, grpc_port_ = 0;
  pid_t pid_ = -1;
};

std::string ApiKey(const RealHeadscale& hs) {
  auto out = hs.Cli({"apikeys", "create", "--expiration", "1d"});
  EXPECT_TRUE(out.ok()) << out.status().ToString();
  if (!out.ok()) return "";
  std::string s = *out;
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s.substr(s.find_last_of('\n') + 1);
}

PacketFilter ReadFilter(NodeFactsReader& r) {
  auto text = r.FilterJson();
  EXPECT_TRUE(text.ok()) << text.status().ToString();
  auto f = PacketFilter::Parse(text.ok() ? *text : "null", "/debug/filter");
  EXPECT_TRUE(f.ok()) << f.status().ToString();
  return f.ok() ? *f : PacketFilter();
}

// Node A: hsa and hsb with per-user rules, hsa's admin group, tagged server and host, in HuJSON.
const char* kPolicyA = R"(// two tenants on node A
{
  "groups": {"group:hsa-admins": ["hsa@"], "group:hsb-team": ["hsb@"]},
  "hosts": {"hsa-db": "100.64.0.50/32"},
  "tagOwners": {"tag:hsa-srv": ["hsa@"]},
  "acls": [
    {"action": "accept", "src": ["hsa@"], "dst": ["hsa@:*"]}, // hsa's devices see each other
    {"action": "accept", "src": ["hsb@"], "dst": ["hsb@:*"]},
    {"action": "accept", "src": ["group:hsa-admins"], "dst": ["tag:hsa-srv:22", "hsa-db:5432"]},
  ],
  "ssh": [{"action": "accept", "src": ["group:hsa-admins"], "dst": ["tag:hsa-srv"], "users": ["root"]}],
}
)";
const char* kPolicyB = R"({"acls": [{"action": "accept", "src": ["hsc@"], "dst": ["hsc@:*"]}]})";

TEST(RealHeadscalePolicyTest, TenantPolicyMovesBetweenTwoRealNodes) {
  if (access(kHeadscale, X_OK) != 0) {
    GTEST_SKIP() << kHeadscale << " is not installed (scripts/setup-peers installs the real peers)";
  }
  char tmpl[] = "/tmp/headshift-policy-real-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  fs::path root(tmpl);
  struct RemoveDir {  // after the nodes stopped (declared first: destroyed last), even on a failed ASSERT
    fs::path p;
    ~RemoveDir() {
      std::error_code ec;
      fs::remove_all(p, ec);
    }
  } cleanup{root};
  {
    RealHeadscale a(root / "a", "ts.test"), b(root / "b", "ts.test");
    ASSERT_TRUE(a.Start());
    // One Noise key for both nodes, as a multi-node deployment runs them.
    fs::copy_file(a.dir() / "noise_private.key", b.dir() / "noise_private.key");
    ASSERT_TRUE(b.Start());
    std::string key_a = ApiKey(a), key_b = ApiKey(b);
    ASSERT_FALSE(key_a.empty() || key_b.empty());
    for (auto* u : {"hsa", "hsb"}) ASSERT_TRUE(a.Cli({"users", "create", u}).ok());
    for (auto* u : {"hsa", "hsc"}) ASSERT_TRUE(b.Cli({"users", "create", u}).ok());
    // hsa's devices first on both nodes: the same addresses on both (sequential allocation).
    ASSERT_TRUE(a.AddDevice("hsa", "hsa-laptop"));
    ASSERT_TRUE(a.AddDevice("hsa", "hsa-phone"));
    ASSERT_TRUE(a.AddDevice("hsb", "hsb-laptop"));
    ASSERT_TRUE(b.AddDevice("hsa", "hsa-laptop"));
    ASSERT_TRUE(b.AddDevice("hsa", "hsa-phone"));
    ASSERT_TRUE(b.AddDevice("hsc", "hsc-laptop"));
    std::vector<std::string> hsa_ips = a.Ips(key_a, "hsa");
    ASSERT_EQ(hsa_ips.size(), 4u);  // two devices, IPv4 and IPv6 each
    std::vector<std::string> b_ips = b.Ips(key_b, "hsa");
    std::sort(hsa_ips.begin(), hsa_ips.end());
    std::sort(b_ips.begin(), b_ips.end());
    ASSERT_EQ(hsa_ips, b_ips);

    HeadscaleClient ca(a.url(), key_a, 10000), cb(b.url(), key_b, 10000);
    auto none = cb.GetPolicy();
    ASSERT_TRUE(none.ok()) << none.status().ToString();
    EXPECT_FALSE(none->set);  // database mode, nothing stored yet

    // SetPolicy takes HuJSON; GetPolicy answers it as stored (comments included).
    auto up = ca.SetPolicy(kPolicyA);
    ASSERT_TRUE(up.ok()) << up.status().ToString() << "\n" << a.Log();
    ASSERT_TRUE(cb.SetPolicy(kPolicyB).ok());
    auto got_a = ca.GetPolicy();
    ASSERT_TRUE(got_a.ok()) << got_a.status().ToString();
    EXPECT_TRUE(got_a->set);
    EXPECT_FALSE(got_a->updated_at.empty());
    EXPECT_NE(got_a->policy.find("// hsa's devices see each other"), std::string::npos);
    auto src = PolicyDocument::Parse(got_a->policy, "node A");
    ASSERT_TRUE(src.ok()) << src.status().ToString();
    EXPECT_TRUE(src->SameAs(*PolicyDocument::Parse(kPolicyA, "kPolicyA")));
    auto tgt = PolicyDocument::Parse(cb.GetPolicy()->policy, "node B");
    ASSERT_TRUE(tgt.ok());

    // Parity facts, from each node.
    NodeFactsReader ra("A", a.url(), a.debug_url(), 10000), rb("B", b.url(), b.debug_url(), 10000);
    auto fa = ra.Read();
    auto fb = rb.Read();
    ASSERT_TRUE(fa.ok() && fb.ok());
    EXPECT_TRUE(fa->unread.empty()) << fa->unread[0];
    EXPECT_EQ(fa->noise_key, fb->noise_key);
    EXPECT_EQ(fa->noise_key->rfind("mkey:", 0), 0u);
    EXPECT_EQ(fa->base_domain, std::optional<std::string>("ts.test"));
    EXPECT_EQ(fa->magic_dns, std::optional<bool>(true));
    EXPECT_EQ(fa->prefix_v4, std::optional<std::string>("100.64.0.0/24"));
    EXPECT_EQ(fa->policy_mode, std::optional<std::string>("database"));
    EXPECT_EQ(fa->oidc_issuer, std::optional<std::string>(""));
    ASSERT_TRUE(fa->derp.has_value());
    EXPECT_NE(fa->derp->dump().find("derp.test"), std::string::npos) << fa->derp->dump();
    ASSERT_TRUE(fa->version.has_value());
    std::printf("parity facts of node A: version %s, base_domain %s, prefixes %s %s, policy %s, derp %s\n",
                fa->version->c_str(), fa->base_domain->c_str(), fa->prefix_v4->c_str(), fa->prefix_v6->c_str(),
                fa->policy_mode->c_str(), fa->derp->dump().c_str());
    auto parity = ParityReport::Compare(*fa, *fb, {hsa_ips, false});
    EXPECT_TRUE(parity.differences().empty()) << parity.differences()[0].ToString();

    // Before the tenant's part is on B, B's filter grants hsa's devices nothing: named by address.
    PacketFilter filter_a = ReadFilter(ra);
    ASSERT_GT(filter_a.rule_count(), 0u);
    EXPECT_FALSE(filter_a.Between(hsa_ips[0], hsa_ips[1]).empty());
    auto before = TailnetEquivalence::Compare(filter_a, ReadFilter(rb), hsa_ips);
    EXPECT_EQ(before.size(), 12u);  // every ordered pair of 4 addresses
    EXPECT_EQ(TailnetEquivalence::ToStatus(before).code(), ExitCode::kNeedsOperator);

    // Split, merge into B, apply, read back.
    TenantPolicySplitter split(TenantPrincipals{{"hsa"}, {"hsb"}});
    auto part = split.Extract(*src);
    ASSERT_TRUE(part.ok());
    EXPECT_TRUE(part->issues.empty());
    EXPECT_EQ(part->rules.size(), 3u);
    EXPECT_EQ(part->OwnedTags(), std::vector<std::string>{"tag:hsa-srv"});
    EXPECT_TRUE(split.CheckTarget(*part, *tgt).empty());
    auto merged = split.MergeInto(*tgt, *part);
    ASSERT_TRUE(merged.ok()) << merged.status().ToString();
    for (const auto& l : PolicyDiff::Lines(*tgt, *merged)) std::printf("node B %s\n", l.c_str());
    ASSERT_TRUE(cb.SetPolicy(merged->ToJson()).ok());
    auto back = PolicyDocument::Parse(cb.GetPolicy()->policy, "node B");
    ASSERT_TRUE(back.ok());
    EXPECT_TRUE(back->SameAs(*merged));
    // Idempotent: merging the part again changes nothing.
    auto again = split.MergeInto(*back, *part);
    ASSERT_TRUE(again.ok());
    EXPECT_TRUE(again->SameAs(*back));

    // B now grants hsa's devices what A does (B's headscale compiled it: the proof comes from B).
    auto after = TailnetEquivalence::Compare(filter_a, ReadFilter(rb), hsa_ips);
    EXPECT_TRUE(after.empty()) << after[0].ToString();

    // The part leaves A; A accepts the rest and keeps hsb's rule.
    auto removed = split.RemoveFrom(*src, *part);
    ASSERT_TRUE(removed.ok());
    for (const auto& l : PolicyDiff::Lines(*src, *removed)) std::printf("node A %s\n", l.c_str());
    ASSERT_TRUE(ca.SetPolicy(removed->ToJson()).ok());
    auto left = PolicyDocument::Parse(ca.GetPolicy()->policy, "node A");
    ASSERT_TRUE(left.ok());
    EXPECT_TRUE(split.Extract(*left)->empty());
    EXPECT_EQ(left->json()["acls"].size(), 1u);
    PacketFilter filter_a2 = ReadFilter(ra);
    EXPECT_TRUE(filter_a2.Between(hsa_ips[0], hsa_ips[1]).empty());

    // headscale's own validation is reported as bad input, and the node keeps its policy.
    auto bad = ca.SetPolicy(R"({"acls": [{"action": "accept", "src": ["group:nope"], "dst": ["*:*"]}]})");
    ASSERT_FALSE(bad.ok());
    EXPECT_EQ(bad.status().code(), ExitCode::kBadInput) << bad.status().ToString();
    std::printf("headscale refused a bad policy: %s\n", bad.status().message().c_str());
    EXPECT_TRUE(PolicyDocument::Parse(ca.GetPolicy()->policy, "A")->SameAs(*left));

    // A rule for a user the node does not have (yet) is accepted: the tenant's part may be applied to
    // the target before its user rows are served there.
    auto ahead = cb.SetPolicy(R"({"acls": [{"action": "accept", "src": ["notyet@"], "dst": ["notyet@:*"]}]})");
    EXPECT_TRUE(ahead.ok()) << ahead.status().ToString();
  }
}

}  // namespace
}  // namespace headshift
