#include "dataplane/cidr.h"

#include <gtest/gtest.h>

namespace headshift {
namespace {

IpAddress Ip(const char* s) { return *IpAddress::Parse(s); }

TEST(ParseCidr, AcceptsPrefixesAndSingleAddresses) {
  auto v4 = ParseCidr("10.20.0.0/16");
  ASSERT_TRUE(v4.ok()) << v4.status().ToString();
  EXPECT_EQ(v4->network.family, AF_INET);
  EXPECT_EQ(v4->prefix_len, 16);
  EXPECT_EQ(v4->ToString(), "10.20.0.0/16");

  auto host = ParseCidr("192.0.2.7");
  ASSERT_TRUE(host.ok());
  EXPECT_EQ(host->ToString(), "192.0.2.7/32");

  auto v6 = ParseCidr("2001:db8:1::/48");
  ASSERT_TRUE(v6.ok());
  EXPECT_EQ(v6->network.family, AF_INET6);
  EXPECT_EQ(v6->ToString(), "2001:db8:1::/48");

  auto v6host = ParseCidr("2001:db8::7");
  ASSERT_TRUE(v6host.ok());
  EXPECT_EQ(v6host->prefix_len, 128);

  auto all = ParseCidr("0.0.0.0/0");
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->prefix_len, 0);
}

TEST(ParseCidr, V4MappedPrefixBecomesIpv4) {
  auto c = ParseCidr("::ffff:10.1.0.0/112");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->ToString(), "10.1.0.0/16");
  auto one = ParseCidr("::ffff:10.1.2.3");
  ASSERT_TRUE(one.ok());
  EXPECT_EQ(one->ToString(), "10.1.2.3/32");
}

TEST(ParseCidr, RejectsBadInputNamingTheValue) {
  for (const char* bad : {"", "10.0.0.0/33", "10.0.0.0/", "10.0.0.0/-1", "10.0.0.0/8x", "2001:db8::/129", "banana",
                          "10.0.0.256", "10.0.0.0/8/8", "/8"}) {
    auto c = ParseCidr(bad);
    ASSERT_FALSE(c.ok()) << bad;
    EXPECT_EQ(c.status().code(), ExitCode::kBadInput) << bad;
    if (*bad) {
      EXPECT_NE(c.status().message().find(bad), std::string::npos) << c.status().message();
    }
    EXPECT_FALSE(c.status().hint().empty());
  }
}

TEST(ParseCidr, RejectsHostBitsAndSuggestsTheNetwork) {
  auto c = ParseCidr("10.1.2.3/8");
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), ExitCode::kBadInput);
  EXPECT_NE(c.status().message().find("10.1.2.3/8"), std::string::npos);
  EXPECT_NE(c.status().hint().find("10.0.0.0/8"), std::string::npos) << c.status().hint();
  auto v6 = ParseCidr("2001:db8::1/64");
  ASSERT_FALSE(v6.ok());
  EXPECT_NE(v6.status().hint().find("2001:db8::/64"), std::string::npos) << v6.status().hint();
}

TEST(Cidr, ContainsMatchesV4MappedPeersButV6PrefixesOnlyRealV6) {
  Cidr v4 = *ParseCidr("10.20.0.0/16");
  EXPECT_TRUE(v4.Contains(Ip("10.20.3.4")));
  EXPECT_FALSE(v4.Contains(Ip("10.21.3.4")));
  EXPECT_TRUE(v4.Contains(Ip("::ffff:10.20.3.4")));   // IPv4 client on a dual-stack socket
  EXPECT_FALSE(v4.Contains(Ip("::ffff:10.21.3.4")));
  EXPECT_FALSE(v4.Contains(Ip("2001:db8::1")));

  Cidr v6 = *ParseCidr("2001:db8:1::/48");
  EXPECT_TRUE(v6.Contains(Ip("2001:db8:1:ffff::9")));
  EXPECT_FALSE(v6.Contains(Ip("2001:db8:2::9")));
  Cidr any6 = *ParseCidr("::/0");
  EXPECT_TRUE(any6.Contains(Ip("2001:db8::1")));
  EXPECT_FALSE(any6.Contains(Ip("::ffff:10.0.0.1")));  // ::/0 means IPv6 clients, not every client
  EXPECT_FALSE(any6.Contains(Ip("10.0.0.1")));

  Cidr odd = *ParseCidr("10.20.128.0/17");
  EXPECT_TRUE(odd.Contains(Ip("10.20.200.1")));
  EXPECT_FALSE(odd.Contains(Ip("10.20.127.255")));
}

TEST(ParseCidrList, SplitsCommasAndNamesTheBadElement) {
  auto l = ParseCidrList({"10.0.0.0/8,192.168.0.0/16", "2001:db8::/32"});
  ASSERT_TRUE(l.ok());
  ASSERT_EQ(l->size(), 3u);
  EXPECT_EQ((*l)[1].ToString(), "192.168.0.0/16");
  auto bad = ParseCidrList({"10.0.0.0/8,10.0.0.300"});
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("10.0.0.300"), std::string::npos);
}

TEST(InetEndpoint, RoundTripsThroughText) {
  for (const char* s : {"10.0.0.1:443", "[2001:db8::1]:8443", "[::ffff:10.0.0.1]:1"}) {
    auto e = InetEndpoint::Parse(s);
    ASSERT_TRUE(e.ok()) << s;
    EXPECT_EQ(e->ToString(), s);
  }
  for (const char* bad : {"10.0.0.1", "10.0.0.1:70000", "[2001:db8::1:443", "x:1", ":1"}) {
    EXPECT_FALSE(InetEndpoint::Parse(bad).ok()) << bad;
  }
}

}  // namespace
}  // namespace headshift
