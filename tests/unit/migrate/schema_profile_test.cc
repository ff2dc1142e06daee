// The schema profile format: the built-in headscale profile parses to what the code expects, and
// malformed profiles are refused with the key that is wrong.
#include "migrate/schema_profile.h"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

namespace headshift::migrate {
namespace {

TEST(SchemaProfileTest, BuiltInHeadscaleProfile) {
  auto p = LoadSchemaProfile("");
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(p->name, "headscale");
  EXPECT_EQ(p->origin, "built-in");
  EXPECT_EQ(p->cluster_column, "cluster_id");
  EXPECT_EQ(p->root_table, "users");
  EXPECT_EQ(p->root_key, "name");
  EXPECT_EQ(p->device_table, "nodes");
  EXPECT_EQ(p->device_soft_delete, "deleted_at");
  ASSERT_EQ(p->tables.size(), 3u);
  EXPECT_EQ(p->tables[0].table, "pre_auth_keys");
  EXPECT_EQ(p->tables[1].table, "nodes");
  EXPECT_EQ(p->tables[1].tags_column, "tags");
  EXPECT_EQ(p->tables[2].table, "acl_policies");  // the cluster_id fork's per-user policy rows
  EXPECT_TRUE(p->tables[2].optional);
  EXPECT_FALSE(p->tables[1].optional);
  ASSERT_EQ(p->tables[1].owners.size(), 2u);
  EXPECT_EQ(p->tables[1].owners[1].column, "auth_key_id");
  EXPECT_EQ(p->tables[1].unique_in_cluster,
            (std::vector<std::string>{"ipv4", "ipv6", "given_name", "node_key", "machine_key"}));
  EXPECT_TRUE(p->IsStatic("api_keys"));
  EXPECT_TRUE(p->IsSecretColumn("pre_auth_keys", "key"));
  EXPECT_TRUE(p->IsSecretColumn("pre_auth_keys", "hash"));
  EXPECT_TRUE(p->IsSecretColumn("api_keys", "hash"));
  EXPECT_FALSE(p->IsSecretColumn("pre_auth_keys", "prefix"));
  EXPECT_FALSE(p->IsSecretColumn("nodes", "node_key"));  // public keys
  EXPECT_TRUE(p->IsTenantTable("users"));
  EXPECT_FALSE(p->IsTenantTable("policies"));
  // The compiled-in text is the shipped file.
  std::ifstream f(std::string(HEADSHIFT_SOURCE_DIR) + "/migrate/profiles/headscale.yaml");
  std::stringstream ss;
  ss << f.rdbuf();
  EXPECT_EQ(ss.str(), DefaultSchemaProfileYaml());
}

TEST(SchemaProfileTest, ForkTablesWithExplicitReferences) {
  auto p = ParseSchemaProfile(R"(
profile: fork
cluster_column: tenant_cluster
tenant: {table: accounts, key: slug}
tables:
  - table: devices
    owners: [{column: account_ref, references: accounts}]
  - table: routes
    owners: [device_id]
    unique_in_cluster: [prefix]
static: [settings]
secret_columns:
  devices: [enroll_token]
)", "fork.yaml");
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_TRUE(p->IsSecretColumn("devices", "enroll_token"));
  EXPECT_TRUE(p->IsSecretColumn("pre_auth_keys", "key")) << "the built-in credential columns are always masked";
  EXPECT_FALSE(p->IsSecretColumn("devices", "account_ref"));
  EXPECT_EQ(p->device_table, "accounts");  // no devices section: count root rows
  EXPECT_EQ(p->tables[0].owners[0].references, "accounts");
  EXPECT_TRUE(p->tables[1].owners[0].references.empty());
}

// database.cluster_column overrides the profile's: `none` (stock headscale, split only) or a name.
TEST(SchemaProfileTest, ConfiguredClusterColumnOverridesTheProfile) {
  DatabaseConfig db;
  db.layout = DbLayout::kSplit;
  db.cluster_column = kNoClusterColumn;
  auto stock = LoadConfiguredProfile(db);
  ASSERT_TRUE(stock.ok()) << stock.status().ToString();
  EXPECT_FALSE(stock->HasClusterColumn());
  EXPECT_EQ(stock->cluster_column, "");
  EXPECT_EQ(stock->forbidden_cluster_column, "cluster_id");  // a fork's column is refused, not ignored
  EXPECT_EQ(stock->DescribeClusterColumn(""), "no cluster column (stock headscale, split layout)");

  db.cluster_column = "tenant_cluster";
  auto renamed = LoadConfiguredProfile(db);
  ASSERT_TRUE(renamed.ok());
  EXPECT_EQ(renamed->cluster_column, "tenant_cluster");
  EXPECT_EQ(renamed->DescribeClusterColumn("text"), "tenant_cluster text");

  db.cluster_column.clear();
  auto builtin = LoadConfiguredProfile(db);
  ASSERT_TRUE(builtin.ok());
  EXPECT_EQ(builtin->cluster_column, "cluster_id");

  // Shared layout: refused whether `none` comes from headshift.yaml or from a profile file.
  db.layout = DbLayout::kShared;
  db.cluster_column = kNoClusterColumn;
  auto shared = LoadConfiguredProfile(db);
  ASSERT_FALSE(shared.ok());
  EXPECT_EQ(shared.status().code(), ExitCode::kBadInput);
  EXPECT_NE(shared.status().message().find("database.cluster_column: none"), std::string::npos)
      << shared.status().message();
  EXPECT_NE(shared.status().hint().find("database.layout: split"), std::string::npos) << shared.status().hint();
  auto file = ParseSchemaProfile("profile: stock\ncluster_column: none\ntenant: {table: users, key: name}\n", "s.yaml");
  ASSERT_TRUE(file.ok()) << file.status().ToString();
  EXPECT_FALSE(file->HasClusterColumn());
  EXPECT_EQ(CheckProfileLayout(*file, DbLayout::kShared).code(), ExitCode::kBadInput);
  EXPECT_TRUE(CheckProfileLayout(*file, DbLayout::kSplit).ok());
}

TEST(SchemaProfileTest, RefusesMalformedProfilesNamingTheKey) {
  struct Case {
    const char* yaml;
    const char* expect;
  } cases[] = {
      {"profile: x\ncluster_column: c\ntenant: {table: u, key: n}\nextra: 1\n", "extra: unknown key"},
      {"profile: x\ntenant: {table: u, key: n}\n", "cluster_column: required"},
      {"profile: x\ncluster_column: c\ntenant: {table: u}\n", "tenant.key: required"},
      {"profile: x\ncluster_column: c\ntenant: {table: u, key: n}\ntables: [{table: t}]\n", "tables[0].owners: required"},
      {"profile: x\ncluster_column: c\ntenant: {table: u, key: n}\ntables: [{table: u, owners: [a]}]\n", "listed twice"},
      {"profile: x\ncluster_column: c\ntenant: {table: u, key: n}\ntables: [{table: t, owners: [a], uniq: [b]}]\n",
       "tables[0].uniq: unknown key"},
      {"profile: x\ncluster_column: c\ntenant: {table: u, key: n}\ndevices: {table: nodes}\n", "devices.table"},
      {"profile: x\ncluster_column: c\ntenant: {table: u, key: n}\nstatic: [u]\n", "also a tenant table"},
      {"profile: x\ncluster_column: c\ntenant: {table: u, key: n}\nsecret_columns: [key]\n", "secret_columns: expected a mapping"},
      {"profile: x\ncluster_column: c\ntenant: {table: u, key: n}\nsecret_columns: {t: []}\n", "secret_columns.t: expected a non-empty"},
      {"profile: x\ncluster_column: c\ntenant: {table: u, key: n}\nsecret_columns: {t: k}\n", "secret_columns.t: expected a list"},
      {"profile: [\n", "not valid YAML"},
      {"", "is empty"},
  };
  for (const auto& c : cases) {
    auto p = ParseSchemaProfile(c.yaml, "p.yaml");
    ASSERT_FALSE(p.ok()) << c.yaml;
    EXPECT_EQ(p.status().code(), ExitCode::kBadInput);
    EXPECT_NE(p.status().message().find(c.expect), std::string::npos) << c.expect << " in: " << p.status().message();
  }
  auto missing = LoadSchemaProfile("/nonexistent/profile.yaml");
  EXPECT_EQ(missing.status().code(), ExitCode::kBadInput);
}

}  // namespace
}  // namespace headshift::migrate
