// Tenant facts read for the orchestrator: devices with parsed endpoints, the tenant's public client
// addresses (what the dataplane selects connections by), devices per tenant per cluster.
#include <gtest/gtest.h>

#include <map>

#include "migrate/tenant_mover.h"
#include "sandbox/seed.h"
#include "tests/integration/migrate/migrate_lab.h"

namespace headshift::migrate {
namespace {

class FactsTest : public ::testing::TestWithParam<bool> {};  // param: split

TEST_P(FactsTest, NodesAddressesAndLoad) {
  LabOptions o;
  o.split = GetParam();
  auto hsa = Tenant("hsa", "3", 9, 0, "198.18.1.1");
  hsa.public_addresses = 4;
  hsa.shared_address = "198.18.9.9";  // first two devices behind one NAT shared with hsb
  hsa.shared_devices = 2;
  auto hsb = Tenant("hsb", "3", 3, 50, "198.18.2.1");
  hsb.shared_address = "198.18.9.9";
  hsb.shared_devices = 1;
  Lab lab = MakeLab(GetParam() ? "facts_split" : "facts_shared", o, {hsa, hsb, Tenant("hsc", "4", 5, 100, "203.0.113.1")});
  // A device that roamed: IPv6 and LAN endpoints only; a soft-deleted device.
  lab.Exec("3", "UPDATE nodes SET endpoints = '[\"[2001:db8::7]:41641\",\"10.1.2.3:41641\",\"[fe80::1]:41641\",\"bogus\"]' "
                "WHERE hostname = 'hsa-dev-8'");
  lab.Exec("3", "UPDATE nodes SET deleted_at = now(), endpoints = '[\"192.0.2.44:41641\"]' WHERE hostname = 'hsa-dev-7'");
  auto mover = TenantMover::Open(lab.config);
  ASSERT_TRUE(mover.ok());
  auto nodes = (*mover)->TenantNodes("hsa", "3");
  ASSERT_TRUE(nodes.ok()) << nodes.status().ToString();
  ASSERT_EQ(nodes->size(), 9u);
  auto creds = sandbox::NodeCredentials(*lab.Connect("3"), "hsa");
  ASSERT_TRUE(creds.ok());
  ASSERT_EQ(creds->size(), 8u);  // NodeCredentials skips the soft-deleted device
  std::map<int64_t, sandbox::NodeCredential> by_id;
  for (const auto& c : *creds) by_id[c.id] = c;
  for (size_t i = 0; i < nodes->size(); ++i) {
    EXPECT_EQ((*nodes)[i].given_name, "hsa-dev-" + std::to_string(i));
    if (i == 7) continue;
    ASSERT_TRUE(by_id.count((*nodes)[i].id));
    EXPECT_EQ((*nodes)[i].node_key, by_id[(*nodes)[i].id].node_key);
    EXPECT_EQ((*nodes)[i].machine_key, by_id[(*nodes)[i].id].machine_key);
  }
  EXPECT_EQ((*nodes)[0].ipv4, "100.64.0.1");
  EXPECT_EQ((*nodes)[0].ipv6, "fd7a:115c:a1e0::1");
  ASSERT_EQ((*nodes)[0].endpoints.size(), 2u);
  EXPECT_EQ((*nodes)[0].endpoints[0].ip, "198.18.9.9");
  EXPECT_EQ((*nodes)[0].endpoints[0].port, 41641);
  EXPECT_FALSE((*nodes)[0].last_seen.empty());
  EXPECT_TRUE((*nodes)[7].deleted);
  ASSERT_EQ((*nodes)[8].endpoints.size(), 3u);  // "bogus" skipped
  EXPECT_EQ((*nodes)[8].endpoints[0].ip, "2001:db8::7");

  auto pub = (*mover)->PublicClientAddresses("hsa", "3");
  ASSERT_TRUE(pub.ok()) << pub.status().ToString();
  // Devices 2..6 use 198.18.1.1 + (i % 4); 0,1 the shared NAT; 7 deleted; 8 only IPv6 public.
  EXPECT_EQ(*pub, (std::vector<std::string>{"198.18.1.1", "198.18.1.2", "198.18.1.3", "198.18.1.4", "198.18.9.9",
                                            "2001:db8::7"}));
  auto none = (*mover)->TenantNodes("hsa", "4");
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());

  auto load = (*mover)->Load();
  ASSERT_TRUE(load.ok()) << load.status().ToString();
  EXPECT_EQ(load->devices["3"]["hsa"], 8);  // the soft-deleted device does not count
  EXPECT_EQ(load->devices["3"]["hsb"], 3);
  EXPECT_EQ(load->devices["4"]["hsc"], 5);
  EXPECT_EQ(load->Total("3"), 11);
  EXPECT_EQ(load->Total("4"), 5);
  EXPECT_EQ(load->ToJson()["3"]["total"], 11);
}

INSTANTIATE_TEST_SUITE_P(Layouts, FactsTest, ::testing::Values(false, true),
                         [](const auto& i) { return std::string(i.param ? "split" : "shared"); });

}  // namespace
}  // namespace headshift::migrate
