// NAT: clients reach the proxy through a load balancer namespace doing DNAT + masquerade
// (nftables), so the proxy sees every client as the balancer's address. With --conntrack-netns the
// tenant's clients are resolved through the balancer's conntrack table into the exact connections
// the proxy holds, and only those are reset; the RST travels back through the NAT to the client.
//
//   clients (c)  10.62.1.10/.11 tenant, .20 other  --veth-->  lb (l) 10.62.1.1:80  DNAT -> 10.62.2.2:8080,
//   masquerade to 10.62.2.1  --veth-->  proxy (p) 10.62.2.2:8080
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <unistd.h>

#include <fstream>
#include <set>

#include "tests/fixtures/cli_runner.h"
#include "tests/integration/dataplane/netns_lab.h"

namespace headshift::testing {
namespace {

class NatTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { RemoveStaleTestNetns(); }

  void SetUp() override {
    client_ = std::make_unique<TestNetns>("c");
    lb_ = std::make_unique<TestNetns>("l");
    proxy_ = std::make_unique<TestNetns>("p");
    const std::string pid = std::to_string(getpid());
    const std::string cl_c = "hsdp" + pid + "cc", cl_l = "hsdp" + pid + "cl";  // client <-> lb
    const std::string lp_l = "hsdp" + pid + "lp", lp_p = "hsdp" + pid + "pp";  // lb <-> proxy
    // veths are created inside the client/lb namespaces, so nothing ever lands in the host's.
    client_->Ip({"link", "add", cl_c, "type", "veth", "peer", "name", cl_l, "netns", lb_->name()});
    lb_->Ip({"link", "add", lp_l, "type", "veth", "peer", "name", lp_p, "netns", proxy_->name()});
    for (const char* a : {"10.62.1.10/24", "10.62.1.11/24", "10.62.1.20/24"}) client_->Ip({"addr", "add", a, "dev", cl_c});
    client_->Ip({"link", "set", cl_c, "up"});
    lb_->Ip({"addr", "add", "10.62.1.1/24", "dev", cl_l});
    lb_->Ip({"addr", "add", "10.62.2.1/24", "dev", lp_l});
    lb_->Ip({"link", "set", cl_l, "up"});
    lb_->Ip({"link", "set", lp_l, "up"});
    proxy_->Ip({"addr", "add", "10.62.2.2/24", "dev", lp_p});
    proxy_->Ip({"link", "set", lp_p, "up"});
    lb_->Exec({"sysctl", "-q", "-w", "net.ipv4.ip_forward=1"});
    std::string rules = "table ip hsdp {\n"
                        "  chain pre { type nat hook prerouting priority dstnat; "
                        "ip daddr 10.62.1.1 tcp dport 80 dnat to 10.62.2.2:8080; }\n"
                        "  chain post { type nat hook postrouting priority srcnat; oifname \"" + lp_l +
                        "\" masquerade; }\n}\n";
    std::string file = WriteTempFile("nat-" + pid + ".nft", rules);
    lb_->Exec({"nft", "-f", file});

    listener_ = Listen(*proxy_, "10.62.2.2", 8080);
    for (int i = 0; i < 2; ++i) {
      tenant_.push_back(Connect(*client_, "10.62.1.10", "10.62.1.1", 80, listener_, "tenant-10-" + std::to_string(i)));
      tenant_.push_back(Connect(*client_, "10.62.1.11", "10.62.1.1", 80, listener_, "tenant-11-" + std::to_string(i)));
      others_.push_back(Connect(*client_, "10.62.1.20", "10.62.1.1", 80, listener_, "other-" + std::to_string(i)));
    }
    MakeBusy(tenant_[0]);
    MakeBusy(others_[0]);
  }

  void TearDown() override {
    for (auto* v : {&tenant_, &others_}) {
      for (auto& c : *v) Close(c);
    }
    close(listener_);
    proxy_.reset();
    lb_.reset();
    client_.reset();
  }

  std::unique_ptr<TestNetns> client_, lb_, proxy_;
  int listener_ = -1;
  std::vector<Conn> tenant_, others_;
};

TEST_F(NatTest, ResolvesClientsThroughConntrackAndResetsOnlyTheirConnections) {
  // The proxy really sees one source address for everyone.
  for (auto* v : {&tenant_, &others_}) {
    for (auto& c : *v) EXPECT_EQ(ClientEndpoint(c).rfind("10.62.2.1:", 0), 0u) << ClientEndpoint(c);
  }
  // Without NAT resolution the tenant's CIDR matches nothing on the proxy.
  CliRun blind = RunHeadshift({"--json", "sessions", "kill", "--dry-run", "--netns", proxy_->name(), "--port", "8080",
                               "--client", "10.62.1.10/31"});
  ASSERT_EQ(blind.exit_code, 0) << blind.out << blind.err;
  EXPECT_EQ(nlohmann::json::parse(blind.out)["selected"], 0);

  CliRun r = RunHeadshift({"--json", "sessions", "kill", "--netns", proxy_->name(), "--conntrack-netns", lb_->name(),
                           "--port", "8080", "--client", "10.62.1.10/31"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["selected"], 4);
  EXPECT_EQ(j["reset"], 4);
  EXPECT_EQ(j["failed"], 0);
  EXPECT_EQ(j["nat_flows"], 4);
  std::set<std::string> expected, reported;
  for (auto& c : tenant_) expected.insert(ClientEndpoint(c));
  for (const auto& s : j["sockets"]) {
    reported.insert(s["remote"].get<std::string>());
    EXPECT_EQ(s["local"], "10.62.2.2:8080");
  }
  EXPECT_EQ(reported, expected);

  for (auto& c : tenant_) EXPECT_EQ(AwaitError(c.client), ECONNRESET) << c.label << " (RST back through the NAT)";
  for (auto& c : others_) EXPECT_EQ(Exchange(c), "") << c.label;
  EXPECT_EQ(ListenerAccepts(*client_, "10.62.1.10", "10.62.1.1", 80, listener_), "");
}

TEST_F(NatTest, SnapshotBehindNatSparesLaterConnections) {
  std::string snap = WriteTempFile("nat-snap/placeholder", "");
  snap = snap.substr(0, snap.rfind('/')) + "/snap.json";
  CliRun s = RunHeadshift({"--json", "sessions", "list", "--netns", proxy_->name(), "--conntrack-netns", lb_->name(),
                           "--port", "8080", "--client", "10.62.1.10/31", "--snapshot-out", snap});
  ASSERT_EQ(s.exit_code, 0) << s.out << s.err;
  EXPECT_EQ(nlohmann::json::parse(s.out)["selected"], 4);
  Conn later = Connect(*client_, "10.62.1.10", "10.62.1.1", 80, listener_, "tenant-after-snapshot");
  CliRun k = RunHeadshift({"--json", "sessions", "kill", "--snapshot-in", snap});
  ASSERT_EQ(k.exit_code, 0) << k.out << k.err;
  auto j = nlohmann::json::parse(k.out);
  EXPECT_EQ(j["selected"], 4);
  EXPECT_EQ(j["reset"], 4);
  for (auto& c : tenant_) EXPECT_EQ(AwaitError(c.client), ECONNRESET) << c.label;
  EXPECT_EQ(Exchange(later), "");
  for (auto& c : others_) EXPECT_EQ(Exchange(c), "") << c.label;
  Close(later);
}

}  // namespace
}  // namespace headshift::testing
