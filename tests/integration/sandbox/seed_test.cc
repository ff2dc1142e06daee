// The seeder produces headscale-shaped rows: prefixed keys, JSON endpoints with the public address,
// per-cluster tailnet IPs, FK-consistent pre-auth keys; in both cluster_id column types.
#include "sandbox/seed.h"

#include <gtest/gtest.h>

#include "sandbox/headscale_schema.h"
#include "tests/fixtures/pg_server.h"

namespace headshift::sandbox {
namespace {

class SeedTest : public ::testing::TestWithParam<bool> {};

TEST_P(SeedTest, RowsLookLikeHeadscale) {
  bool text = GetParam();
  std::string dsn = testing::CreateTestDatabase(text ? "seed_text" : "seed_bigint");
  auto c = PgConn::Connect(dsn);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  ASSERT_TRUE(CreateHeadscaleSchema(**c, {text ? ClusterIdType::kText : ClusterIdType::kBigint, true}).ok());
  SeedSpec spec;
  spec.cluster_id_is_text = text;
  spec.tenants.push_back({"hsa", "3", 20, "198.18.1.1", 4, "198.18.9.9", 5, 0, 2});
  spec.tenants.push_back({"hsb", "3", 10, "198.18.2.1", 2, "198.18.9.9", 3, 20, 2});
  spec.tenants.push_back({"hsc", "4", 7, "198.18.3.1", 1, "", 0, 0, 1});
  Status st = SeedTenants(**c, spec);
  ASSERT_TRUE(st.ok()) << st.ToString();

  auto type = (*c)->Exec("SELECT data_type FROM information_schema.columns WHERE table_name='nodes' AND column_name='cluster_id'");
  ASSERT_TRUE(type.ok());
  EXPECT_EQ(type->Get(0, 0), text ? "text" : "bigint");

  auto creds = NodeCredentials(**c, "hsa");
  ASSERT_TRUE(creds.ok());
  ASSERT_EQ(creds->size(), 20u);
  EXPECT_EQ((*creds)[0].node_key.rfind("nodekey:", 0), 0u);
  EXPECT_EQ((*creds)[0].node_key.size(), 8u + 64u);
  EXPECT_EQ((*creds)[0].machine_key.rfind("mkey:", 0), 0u);
  EXPECT_EQ((*creds)[0].public_ip, "198.18.9.9");   // shared NAT address
  EXPECT_EQ((*creds)[5].public_ip, "198.18.1.2");   // base + (5 % 4)
  EXPECT_EQ((*creds)[0].given_name, "hsa-dev-0");

  // Tailnet IPs unique within cluster 3 (hsa offset 0, hsb offset 20), reused across clusters.
  auto dup = (*c)->Exec("SELECT count(*) FROM (SELECT ipv4 FROM nodes GROUP BY cluster_id, ipv4 HAVING count(*) > 1) d");
  ASSERT_TRUE(dup.ok());
  EXPECT_EQ(dup->Get(0, 0), "0");
  auto reuse = (*c)->Exec("SELECT count(DISTINCT cluster_id) FROM nodes WHERE ipv4 = '100.64.0.1'");
  EXPECT_EQ(reuse->Get(0, 0), "2");
  // Every node's auth key belongs to its user.
  auto fk = (*c)->Exec("SELECT count(*) FROM nodes n JOIN pre_auth_keys k ON k.id = n.auth_key_id WHERE k.user_id <> n.user_id");
  EXPECT_EQ(fk->Get(0, 0), "0");
  auto counts = (*c)->Exec("SELECT (SELECT count(*) FROM nodes), (SELECT count(*) FROM users), (SELECT count(*) FROM pre_auth_keys)");
  EXPECT_EQ(counts->Get(0, 0), "37");
  EXPECT_EQ(counts->Get(0, 1), "3");
  EXPECT_EQ(counts->Get(0, 2), "5");
}

INSTANTIATE_TEST_SUITE_P(ClusterIdTypes, SeedTest, ::testing::Values(false, true),
                         [](const auto& i) { return std::string(i.param ? "text" : "bigint"); });

}  // namespace
}  // namespace headshift::sandbox
