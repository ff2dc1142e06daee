// ParityReport: each difference between two nodes' facts is named with its fix, refused or a risk.
#include "controlplane/node_parity.h"

#include <gtest/gtest.h>

namespace headshift {
namespace {

NodeFacts Lab(const std::string& node, const std::string& v4) {
  NodeFacts f;
  f.node = node;
  f.noise_key = "mkey:aaaa";
  f.version = "v0.29.3";
  f.base_domain = "tailnet.example.com";
  f.magic_dns = true;
  f.prefix_v4 = v4;
  f.prefix_v6 = "fd7a:115c:a1e0::/48";
  f.policy_mode = "database";
  f.oidc_issuer = "";
  f.derp = nlohmann::json::parse(R"({"configured":true,"total_regions":1,"regions":{"900":{"region_id":900}}})");
  return f;
}

const ParityDifference* Find(const ParityReport& r, const std::string& fact) {
  for (const auto& d : r.differences()) {
    if (d.fact == fact) return &d;
  }
  return nullptr;
}

TEST(NodeParityTest, IdenticalNodesHaveNoDifference) {
  auto r = ParityReport::Compare(Lab("3", "100.64.0.0/10"), Lab("4", "100.64.0.0/10"), {{"100.64.3.1"}, false});
  EXPECT_TRUE(r.differences().empty()) << r.differences()[0].ToString();
  EXPECT_TRUE(r.RefusalStatus().ok());
}

TEST(NodeParityTest, NoiseKeyAndMinorVersionAreRefused) {
  NodeFacts t = Lab("4", "100.64.0.0/10");
  t.noise_key = "mkey:bbbb";
  t.version = "v0.28.0";
  auto r = ParityReport::Compare(Lab("3", "100.64.0.0/10"), t, {});
  ASSERT_NE(Find(r, "noise_key"), nullptr);
  EXPECT_EQ(Find(r, "noise_key")->severity, ParitySeverity::kRefuse);
  ASSERT_NE(Find(r, "version"), nullptr);
  EXPECT_EQ(Find(r, "version")->severity, ParitySeverity::kRefuse);
  Status st = r.RefusalStatus();
  EXPECT_EQ(st.code(), ExitCode::kRefused);
  EXPECT_NE(st.message().find("noise_key (refused): source mkey:aaaa, target mkey:bbbb"), std::string::npos)
      << st.message();
  EXPECT_NE(st.message().find("fix: give both nodes the same noise.private_key_path"), std::string::npos);
}

TEST(NodeParityTest, PatchVersionIsARisk) {
  NodeFacts t = Lab("4", "100.64.0.0/10");
  t.version = "v0.29.2";
  auto r = ParityReport::Compare(Lab("3", "100.64.0.0/10"), t, {});
  ASSERT_NE(Find(r, "version"), nullptr);
  EXPECT_EQ(Find(r, "version")->severity, ParitySeverity::kRisk);
  EXPECT_FALSE(r.refused());
  EXPECT_EQ(r.RiskLines().size(), 1u);
}

TEST(NodeParityTest, BaseDomainRefusedWithMagicDnsRiskWithout) {
  NodeFacts s = Lab("3", "100.64.0.0/10"), t = Lab("4", "100.64.0.0/10");
  t.base_domain = "other.example.com";
  EXPECT_EQ(Find(ParityReport::Compare(s, t, {}), "base_domain")->severity, ParitySeverity::kRefuse);
  s.magic_dns = t.magic_dns = false;
  EXPECT_EQ(Find(ParityReport::Compare(s, t, {}), "base_domain")->severity, ParitySeverity::kRisk);
  t.magic_dns = true;
  auto r = ParityReport::Compare(s, t, {});
  ASSERT_NE(Find(r, "magic_dns"), nullptr);
  EXPECT_EQ(Find(r, "magic_dns")->source_value, "off");
}

TEST(NodeParityTest, TenantIpsOutsideTargetPrefixesAreNamed) {
  // The lab's layout: disjoint per-node ranges, the tenant keeps its node-3 addresses on node 4.
  auto r = ParityReport::Compare(Lab("3", "100.64.3.0/24"), Lab("4", "100.64.4.0/24"),
                                 {{"100.64.3.1", "100.64.4.7", "fd7a:115c:a1e0::3"}, false});
  const ParityDifference* d = Find(r, "prefixes");
  ASSERT_NE(d, nullptr);
  EXPECT_EQ(d->severity, ParitySeverity::kRisk);
  EXPECT_NE(d->consequence.find("(100.64.3.1)"), std::string::npos) << d->consequence;
}

TEST(NodeParityTest, DerpPolicyModeOidcAndUnreadFacts) {
  NodeFacts s = Lab("3", "100.64.0.0/10"), t = Lab("4", "100.64.0.0/10");
  t.derp = nlohmann::json::parse(R"({"configured":true,"total_regions":0})");
  t.policy_mode = "file";
  t.oidc_issuer = "https://idp.example.com";
  t.unread.push_back("debug_url not configured");
  auto r = ParityReport::Compare(s, t, {{}, true});
  EXPECT_EQ(Find(r, "derp_map")->severity, ParitySeverity::kRisk);
  EXPECT_EQ(Find(r, "policy_mode")->severity, ParitySeverity::kRisk);
  EXPECT_EQ(Find(r, "oidc_issuer")->severity, ParitySeverity::kRefuse);  // the tenant has OIDC users
  EXPECT_EQ(Find(r, "unread")->target_value, "node 4");
  EXPECT_EQ(Find(ParityReport::Compare(s, t, {{}, false}), "oidc_issuer")->severity, ParitySeverity::kRisk);
}

TEST(NodeParityTest, UnreadFactsAreNotComparedAsDifferences) {
  NodeFacts s = Lab("3", "100.64.0.0/10"), t;
  t.node = "4";
  t.noise_key = "mkey:aaaa";
  auto r = ParityReport::Compare(s, t, {{"100.64.3.1"}, false});
  EXPECT_TRUE(r.differences().empty());
}

}  // namespace
}  // namespace headshift
