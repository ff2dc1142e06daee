// PacketFilter / TailnetEquivalence: what a compiled tailcfg.FilterRule list grants between the
// tenant's addresses, and the device pairs whose access differs between two nodes.
#include "controlplane/packet_filter.h"

#include <gtest/gtest.h>

namespace headshift {
namespace {

PacketFilter Filter(const std::string& json) {
  auto f = PacketFilter::Parse(json, "test");
  EXPECT_TRUE(f.ok()) << f.status().ToString();
  return f.ok() ? *f : PacketFilter();
}

// headscale's compilation of {"src":["hsa@"],"dst":["hsa@:*"]} for two devices (both families).
const char* kPerUser = R"([{"SrcIPs": ["100.64.3.1", "100.64.3.2", "fd7a:115c:a1e0:3::1"],
  "DstPorts": [{"IP": "100.64.3.1", "Ports": {"First": 0, "Last": 65535}},
               {"IP": "100.64.3.2", "Ports": {"First": 0, "Last": 65535}},
               {"IP": "fd7a:115c:a1e0:3::1", "Ports": {"First": 0, "Last": 65535}}]}])";

TEST(PacketFilterTest, DefaultProtocolsAndPortRanges) {
  PacketFilter f = Filter(kPerUser);
  EXPECT_EQ(DescribeAccess(f.Between("100.64.3.1", "100.64.3.2")), "icmp; tcp *; udp *; icmpv6");
  EXPECT_TRUE(f.Between("100.64.3.1", "100.64.4.1").empty());
  EXPECT_TRUE(f.Between("100.64.4.1", "100.64.3.1").empty());
  EXPECT_FALSE(f.Between("fd7a:115c:a1e0:3::1", "100.64.3.2").empty());
}

TEST(PacketFilterTest, PrefixesRangesWildcardAndMergedPorts) {
  PacketFilter f = Filter(R"([
    {"SrcIPs": ["100.64.0.0/10"], "DstPorts": [{"IP": "100.64.3.9", "Ports": {"First": 22, "Last": 22}}], "IPProto": [6]},
    {"SrcIPs": ["100.64.3.1-100.64.3.5"], "DstPorts": [{"IP": "100.64.3.9", "Ports": {"First": 23, "Last": 80}}], "IPProto": [6]},
    {"SrcIPs": ["*"], "DstPorts": [{"IP": "100.64.3.0", "Bits": 24, "Ports": {"First": 53, "Last": 53}}], "IPProto": [17]},
    {"SrcIPs": ["*"], "CapGrant": [{"Dsts": ["100.64.3.9/32"], "Caps": ["cap"]}]}])");
  EXPECT_EQ(DescribeAccess(f.Between("100.64.3.2", "100.64.3.9")), "tcp 22-80; udp 53");
  EXPECT_EQ(DescribeAccess(f.Between("100.64.3.6", "100.64.3.9")), "tcp 22; udp 53");
  EXPECT_EQ(DescribeAccess(f.Between("10.0.0.1", "100.64.3.9")), "udp 53");
  EXPECT_EQ(f.rule_count(), 4u);
}

TEST(PacketFilterTest, MalformedFilterIsRefused) {
  EXPECT_FALSE(PacketFilter::Parse("{}", "node 4").ok());
  auto bad = PacketFilter::Parse(R"([{"SrcIPs": ["not-an-ip"]}])", "node 4");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("node 4 rule 0"), std::string::npos);
  EXPECT_EQ(PacketFilter::Parse("null", "node 4")->rule_count(), 0u);
}

TEST(TailnetEquivalenceTest, SameGrantsInAnotherShapeAreEquivalent) {
  // The target compiles the same rule merged with another tenant's rule into other FilterRules.
  PacketFilter target = Filter(R"([
    {"SrcIPs": ["100.64.3.1-100.64.3.2", "fd7a:115c:a1e0:3::1"], "DstPorts": [
      {"IP": "100.64.3.1", "Ports": {"First": 0, "Last": 1000}}, {"IP": "100.64.3.1", "Ports": {"First": 1001, "Last": 65535}},
      {"IP": "100.64.3.2", "Ports": {"First": 0, "Last": 65535}}, {"IP": "fd7a:115c:a1e0:3::1/128", "Ports": {"First": 0, "Last": 65535}}]},
    {"SrcIPs": ["100.64.4.1"], "DstPorts": [{"IP": "100.64.4.1", "Ports": {"First": 0, "Last": 65535}}]}])");
  auto diffs = TailnetEquivalence::Compare(Filter(kPerUser), target, {"100.64.3.1", "100.64.3.2", "fd7a:115c:a1e0:3::1"});
  EXPECT_TRUE(diffs.empty()) << diffs[0].ToString();
  EXPECT_TRUE(TailnetEquivalence::ToStatus(diffs).ok());
}

TEST(TailnetEquivalenceTest, MissingGrantNamesTheDevicePairs) {
  PacketFilter target = Filter(R"([{"SrcIPs": ["100.64.3.1"], "DstPorts": [{"IP": "100.64.3.2", "Ports": {"First": 0, "Last": 65535}}]}])");
  auto diffs = TailnetEquivalence::Compare(Filter(kPerUser), target, {"100.64.3.1", "100.64.3.2"});
  ASSERT_EQ(diffs.size(), 1u);
  EXPECT_EQ(diffs[0].ToString(), "100.64.3.2 -> 100.64.3.1: source allows icmp; tcp *; udp *; icmpv6, target allows nothing");
  Status st = TailnetEquivalence::ToStatus(diffs);
  EXPECT_EQ(st.code(), ExitCode::kNeedsOperator);
  EXPECT_NE(st.message().find("100.64.3.2 -> 100.64.3.1"), std::string::npos);
}

}  // namespace
}  // namespace headshift
