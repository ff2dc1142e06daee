// Which endpoint addresses count as a client's public address, and parsing of nodes.endpoints.
#include <gtest/gtest.h>

#include "migrate/tenant_facts.h"

namespace headshift::migrate {
namespace {

TEST(AddressesTest, PublicClientAddress) {
  for (const char* pub : {"198.18.0.1", "198.19.255.254", "203.0.113.5", "192.0.2.1", "198.51.100.7", "8.8.8.8",
                          "100.63.255.255", "100.128.0.1", "2001:db8::1", "2a00:1450::1", "::ffff:203.0.113.9"}) {
    EXPECT_TRUE(IsPublicClientAddress(pub)) << pub;
  }
  for (const char* priv : {"10.0.0.1", "172.16.0.1", "172.31.255.255", "192.168.1.20", "100.64.0.1", "100.127.255.255",
                           "127.0.0.1", "169.254.1.1", "0.0.0.0", "224.0.0.1", "255.255.255.255", "::", "::1",
                           "fe80::1", "fd7a:115c:a1e0::1", "fc00::1", "ff02::1", "::ffff:192.168.1.1", "not-an-ip",
                           ""}) {
    EXPECT_FALSE(IsPublicClientAddress(priv)) << priv;
  }
}

TEST(AddressesTest, ParseEndpoints) {
  auto e = ParseEndpoints(R"(["203.0.113.5:41641","192.168.1.20:41641","[2001:db8::1]:41641","bogus","1.2.3.4:99999",
                             "[::1]:x", 7, "2001:db8::2:41641"])");
  ASSERT_EQ(e.size(), 3u);
  EXPECT_EQ(e[0].ip, "203.0.113.5");
  EXPECT_EQ(e[0].port, 41641);
  EXPECT_EQ(e[2].ip, "2001:db8::1");
  EXPECT_TRUE(ParseEndpoints("").empty());
  EXPECT_TRUE(ParseEndpoints("null").empty());
  EXPECT_TRUE(ParseEndpoints("{\"a\":1}").empty());
}

}  // namespace
}  // namespace headshift::migrate
