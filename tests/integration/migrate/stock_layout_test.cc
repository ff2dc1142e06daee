// Stock headscale (v0.29.3 schema, no cluster column): one database per node, the cluster is the DSN
// (`database.layout: split` + `database.cluster_column: none`). A tenant moves end to end through
// TenantMover (plan, copy, verify, target re-check, catch-up, retire, rollback) with rows copied byte
// for byte; node ids taken on the target are remapped and reported as a risk; collisions are checked
// against every row of the target database; a configuration that does not match the database is
// refused naming the setting. Real PostgreSQL, schema from sandbox/headscale_schema.cc.
#include <gtest/gtest.h>

#include "migrate/tenant_mover.h"
#include "tests/integration/migrate/migrate_lab.h"

namespace headshift::migrate {
namespace {

// Clusters are named after their nodes: nothing in the rows says which cluster they belong to.
constexpr const char* kEast = "east";
constexpr const char* kWest = "west";

LabOptions StockOptions(bool disjoint_ids) {
  LabOptions o;
  o.split = true;
  o.stock = true;
  o.clusters = {kEast, kWest};
  if (disjoint_ids) o.id_start = {{kWest, 100000}};
  return o;
}

// Every column of the tenant's rows of `table`, as text in id order (no cluster column to normalise).
std::string TenantRows(const Lab& lab, const std::string& cluster, const std::string& table) {
  std::string member = table == "users" ? "x.name = 'hsa'" : "x.user_id = (SELECT id FROM users WHERE name = 'hsa')";
  return lab.Scalar(cluster, "SELECT md5(string_agg(x::text, ',' ORDER BY x.id)) FROM " + table + " x WHERE " + member);
}

TEST(StockLayoutTest, SchemaHasNoClusterColumn) {
  Lab lab = MakeLab("stock_schema", StockOptions(true), {Tenant("hsa", kEast, 3, 0)});
  EXPECT_EQ(lab.Scalar(kEast, "SELECT count(*) FROM information_schema.columns WHERE column_name = 'cluster_id'"), "0");
  EXPECT_EQ(lab.Scalar(kEast, "SELECT version FROM database_versions"), "v0.29.3");
  EXPECT_EQ(lab.Scalar(kEast, "SELECT count(*) FROM nodes"), "3");
}

TEST(StockLayoutTest, PlanCopyVerifyCatchUpRetireWithoutAClusterColumn) {
  Lab lab = MakeLab("stock_move", StockOptions(/*disjoint_ids=*/true),
                    {Tenant("hsa", kEast, 20, 0), Tenant("hsb", kEast, 5, 100), Tenant("hsc", kWest, 8, 500, "198.18.5.1")});
  auto east_before = lab.Checksums(kEast);
  auto mover = OpenMover(lab);
  ASSERT_TRUE(mover);
  EXPECT_FALSE(mover->profile().HasClusterColumn());

  auto where = mover->LocateTenant("hsa");
  ASSERT_TRUE(where.ok()) << where.status().ToString();
  EXPECT_EQ(**where, kEast);

  auto plan = mover->Preflight("hsa", kEast, kWest);
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  EXPECT_EQ(plan->layout, "split");
  EXPECT_EQ(plan->cluster_column, "");
  EXPECT_EQ(plan->cluster_type, "");
  ASSERT_EQ(plan->tables.size(), 3u);
  EXPECT_EQ(plan->tables[2].rows, 20);
  for (const auto& t : plan->tables) EXPECT_EQ(t.id_remaps, 0) << t.table;
  EXPECT_TRUE(plan->risks.empty()) << plan->ToText();
  EXPECT_NE(plan->ToText().find("no cluster column"), std::string::npos) << plan->ToText();
  EXPECT_EQ(lab.Checksums(kEast), east_before) << "preflight wrote something";

  MoveRef ref{"m-stock-1", "hsa", kEast, kWest};
  auto copy = mover->Copy(ref);
  ASSERT_TRUE(copy.ok()) << copy.status().ToString();
  EXPECT_EQ(copy->TotalRows(), 1 + 2 + 20);
  EXPECT_TRUE(copy->remaps.empty()) << copy->ToJson().dump();
  EXPECT_EQ(lab.Checksums(kEast), east_before) << "the copy changed the source";
  // Free ids kept and nothing rewritten: the target rows are the source rows, every column equal.
  for (const std::string table : {"users", "pre_auth_keys", "nodes"}) {
    std::string src = TenantRows(lab, kEast, table);
    ASSERT_NE(src, "NULL") << table;
    EXPECT_EQ(TenantRows(lab, kWest, table), src) << table;
  }
  EXPECT_EQ(lab.Scalar(kWest, "SELECT nextval('nodes_id_seq') > (SELECT max(id) FROM nodes)"), "t");

  auto clean = mover->TargetCollisions(ref);
  ASSERT_TRUE(clean.ok()) << clean.status().ToString();
  EXPECT_TRUE(clean->empty()) << (clean->empty() ? "" : clean->front().message);

  auto v = mover->Verify(ref);
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  EXPECT_TRUE(v->ok);
  for (const auto& t : v->tables) {
    EXPECT_EQ(t.source_rows, t.target_rows) << t.table;
    EXPECT_EQ(t.source_checksum, t.target_checksum) << t.table;
  }

  // Late writes on the source during the cut: a roaming device, a new one (headscale's INSERT has no
  // cluster column), a removed one.
  lab.Exec(kEast, "UPDATE nodes SET endpoints = '[\"203.0.113.77:41641\"]' WHERE hostname = 'hsa-dev-1'");
  lab.Exec(kEast, "INSERT INTO nodes (machine_key, node_key, endpoints, ipv4, ipv6, hostname, given_name, user_id, "
                  "auth_key_id, register_method, tags) SELECT 'mkey:late', 'nodekey:late', '[\"198.51.100.9:41641\"]', "
                  "'100.64.3.250', 'fd7a:115c:a1e0::3fa', 'late', 'late', u.id, min(k.id), 'authkey', '[]' FROM users u "
                  "JOIN pre_auth_keys k ON k.user_id = u.id WHERE u.name = 'hsa' GROUP BY u.id");
  lab.Exec(kEast, "DELETE FROM nodes WHERE hostname = 'hsa-dev-4'");
  auto cu = mover->CatchUp(ref);
  ASSERT_TRUE(cu.ok()) << cu.status().ToString();
  const TableCatchUp* nodes = nullptr;
  for (const auto& t : cu->tables) {
    if (t.table == "nodes") nodes = &t;
  }
  ASSERT_TRUE(nodes);
  EXPECT_EQ(nodes->updated, 1);
  EXPECT_EQ(nodes->inserted, 1);
  EXPECT_EQ(nodes->deleted, 1);
  EXPECT_TRUE(cu->conflicts.empty());
  EXPECT_EQ(lab.Scalar(kWest, "SELECT endpoints FROM nodes WHERE hostname = 'hsa-dev-1'"), "[\"203.0.113.77:41641\"]");
  EXPECT_EQ(lab.Scalar(kWest, "SELECT count(*) FROM nodes WHERE node_key = 'nodekey:late'"), "1");
  EXPECT_EQ(lab.Scalar(kWest, "SELECT count(*) FROM nodes WHERE hostname = 'hsa-dev-4'"), "0");
  EXPECT_EQ(TenantRows(lab, kWest, "nodes"), TenantRows(lab, kEast, "nodes"));

  // Tenant facts read the cluster from the DSN.
  auto facts = mover->TenantNodes("hsa", kWest);
  ASSERT_TRUE(facts.ok()) << facts.status().ToString();
  EXPECT_EQ(facts->size(), 20u);
  auto load = mover->Load();
  ASSERT_TRUE(load.ok()) << load.status().ToString();
  EXPECT_EQ(load->devices[kWest]["hsa"], 20);
  EXPECT_EQ(load->devices[kWest]["hsc"], 8);
  EXPECT_EQ(load->devices[kEast]["hsb"], 5);
  EXPECT_EQ(load->devices[kEast]["hsa"], 20);  // not retired yet

  auto ret = mover->Retire(ref, /*archive=*/true);
  ASSERT_TRUE(ret.ok()) << ret.status().ToString();
  EXPECT_EQ(lab.Scalar(kEast, "SELECT count(*) FROM users WHERE name = 'hsa'"), "0");
  EXPECT_EQ(lab.Scalar(kEast, "SELECT count(*) FROM nodes"), "5");
  EXPECT_EQ(lab.Scalar(kEast, "SELECT count(*) FROM headshift_archive.nodes WHERE headshift_migration_id = 'm-stock-1'"),
            "20");
  where = mover->LocateTenant("hsa");
  ASSERT_TRUE(where.ok()) << where.status().ToString();
  EXPECT_EQ(**where, kWest);
  load = mover->Load();
  ASSERT_TRUE(load.ok());
  EXPECT_EQ(load->devices[kEast].count("hsa"), 0u);
}

TEST(StockLayoutTest, TakenNodeIdsAreRemappedReportedAsARiskAndRolledBackExactly) {
  // Both databases number from 1, as two fresh headscale nodes do: hsa's ids are all taken on west.
  Lab lab = MakeLab("stock_remap", StockOptions(/*disjoint_ids=*/false),
                    {Tenant("hsa", kEast, 12, 0), Tenant("hsc", kWest, 15, 500, "198.18.5.1")});
  auto before = lab.AllChecksums();
  auto mover = OpenMover(lab);
  ASSERT_TRUE(mover);
  auto plan = mover->Preflight("hsa", kEast, kWest);
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  EXPECT_EQ(plan->tables[0].id_remaps, 1);
  EXPECT_EQ(plan->tables[1].id_remaps, 2);
  EXPECT_EQ(plan->tables[2].id_remaps, 12);
  ASSERT_EQ(plan->risks.size(), 1u) << plan->ToText();
  const std::string& risk = plan->risks[0];
  EXPECT_NE(risk.find("12 of 12 device(s) of hsa get a new node id on cluster west"), std::string::npos) << risk;
  EXPECT_NE(risk.find("StableNodeID"), std::string::npos) << risk;
  EXPECT_NE(risk.find("1->16"), std::string::npos) << risk;  // the first proposed remap: past west's 15 nodes
  EXPECT_NE(plan->ToText().find("risk: 12 of 12 device(s)"), std::string::npos) << plan->ToText();
  EXPECT_EQ(plan->ToJson()["risks"].size(), 1u);

  MoveRef ref{"m-stock-remap", "hsa", kEast, kWest};
  auto copy = mover->Copy(ref);
  ASSERT_TRUE(copy.ok()) << copy.status().ToString();
  EXPECT_EQ(copy->remaps["nodes"].size(), 12u);
  // Foreign keys follow the new ids; node and machine keys (what devices present) are unchanged.
  EXPECT_EQ(lab.Scalar(kWest, "SELECT count(*) FROM nodes n JOIN users u ON u.id = n.user_id JOIN pre_auth_keys k ON "
                              "k.id = n.auth_key_id AND k.user_id = u.id WHERE u.name = 'hsa' AND n.id > 15"),
            "12");
  EXPECT_EQ(lab.Scalar(kEast, "SELECT md5(string_agg(node_key || machine_key, ',' ORDER BY node_key)) FROM nodes"),
            lab.Scalar(kWest, "SELECT md5(string_agg(node_key || machine_key, ',' ORDER BY node_key)) FROM nodes n "
                              "JOIN users u ON u.id = n.user_id WHERE u.name = 'hsa'"));
  auto v = mover->Verify(ref);
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  EXPECT_TRUE(v->ok);

  auto rb = mover->Rollback(ref);
  ASSERT_TRUE(rb.ok()) << rb.status().ToString();
  EXPECT_EQ(lab.AllChecksums(), before) << "rollback did not restore every table exactly";
  auto rb2 = mover->Rollback(ref);
  ASSERT_TRUE(rb2.ok()) << rb2.status().ToString();
  EXPECT_TRUE(rb2->nothing_to_do);
}

// A device of hsc on west, written the way stock headscale writes it (no cluster column).
void RegisterOnWest(const Lab& lab, const std::string& ipv4, const std::string& given_name, const std::string& node_key) {
  lab.Exec(kWest, "INSERT INTO nodes (machine_key, node_key, disco_key, endpoints, host_info, ipv4, ipv6, hostname, "
                  "given_name, user_id, register_method, tags, auth_key_id, last_seen, approved_routes, created_at, "
                  "updated_at) SELECT 'mkey:late', '" + node_key + "', 'discokey:late', endpoints, host_info, '" + ipv4 +
                      "', 'fd7a:115c:a1e0::9999', 'late-device', '" + given_name +
                      "', user_id, register_method, tags, auth_key_id, now(), approved_routes, now(), now() "
                      "FROM nodes WHERE hostname = 'hsc-dev-0'");
}

TEST(StockLayoutTest, CollisionsAreCheckedAgainstEveryRowOfTheTargetDatabase) {
  Lab lab = MakeLab("stock_collide", StockOptions(/*disjoint_ids=*/true),
                    {Tenant("hsa", kEast, 6, 0), Tenant("hsc", kWest, 4, 100, "198.18.5.1")});
  const std::string hsa5_key = lab.Scalar(kEast, "SELECT node_key FROM nodes WHERE hostname = 'hsa-dev-5'");
  // Three devices of west use values of hsa's devices: an IP, a given name, a node key.
  RegisterOnWest(lab, "100.64.0.3", "late-a", "nodekey:late-a");
  RegisterOnWest(lab, "100.64.9.1", "hsa-dev-4", "nodekey:late-b");
  RegisterOnWest(lab, "100.64.9.2", "late-c", hsa5_key);
  auto before = lab.AllChecksums();
  auto mover = OpenMover(lab);
  ASSERT_TRUE(mover);

  PreflightReport refused;
  auto pre = mover->Preflight("hsa", kEast, kWest, &refused);
  ASSERT_FALSE(pre.ok());
  EXPECT_EQ(pre.status().code(), ExitCode::kRefused) << pre.status().ToString();
  std::map<std::string, std::vector<std::string>> by_column;
  for (const auto& c : refused.conflicts) {
    EXPECT_EQ(c.kind, "collision") << c.message;
    EXPECT_EQ(c.table, "nodes");
    by_column[c.column] = c.values;
  }
  EXPECT_EQ(by_column["ipv4"], std::vector<std::string>{"100.64.0.3"});
  EXPECT_EQ(by_column["given_name"], std::vector<std::string>{"hsa-dev-4"});
  EXPECT_EQ(by_column["node_key"], std::vector<std::string>{hsa5_key});
  EXPECT_EQ(by_column.size(), 3u) << refused.ToText();
  EXPECT_NE(pre.status().message().find("already used on cluster west"), std::string::npos) << pre.status().message();
  EXPECT_EQ(lab.AllChecksums(), before) << "preflight wrote something";

  // The operator renumbers those devices; a new one takes an IP of hsa after preflight: the copy refuses.
  lab.Exec(kWest, "DELETE FROM nodes WHERE hostname = 'late-device'");
  auto ok = mover->Preflight("hsa", kEast, kWest);
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  RegisterOnWest(lab, "100.64.0.6", "late-d", "nodekey:late-d");
  auto after_register = lab.AllChecksums();
  MoveRef ref{"m-stock-collide", "hsa", kEast, kWest};
  auto copy = mover->Copy(ref);
  ASSERT_FALSE(copy.ok());
  EXPECT_EQ(copy.status().code(), ExitCode::kRefused) << copy.status().ToString();
  EXPECT_NE(copy.status().message().find("nodes.ipv4"), std::string::npos) << copy.status().message();
  EXPECT_NE(copy.status().message().find("100.64.0.6"), std::string::npos) << copy.status().message();
  EXPECT_EQ(lab.AllChecksums(), after_register) << "the refused copy committed something";
  EXPECT_EQ(lab.Scalar(kWest, "SELECT count(*) FROM headshift_copies"), "0");
}

TEST(StockLayoutTest, ConfigurationThatDoesNotMatchTheDatabaseIsRefusedNamingTheSetting) {
  // Stock databases, but the config expects the fork's cluster_id (the default profile).
  Lab stock = MakeLab("stock_vs_fork_cfg", StockOptions(true), {Tenant("hsa", kEast, 3, 0), Tenant("hsc", kWest, 2, 100)});
  Config fork_cfg = stock.config;
  fork_cfg.database.cluster_column.clear();
  auto fork_mover = TenantMover::Open(fork_cfg);
  ASSERT_TRUE(fork_mover.ok()) << fork_mover.status().ToString();
  auto plan = (*fork_mover)->Plan("hsa", kEast, kWest);
  ASSERT_FALSE(plan.ok());
  EXPECT_EQ(plan.status().code(), ExitCode::kBadInput) << plan.status().ToString();
  EXPECT_NE(plan.status().message().find("users has no cluster_id column"), std::string::npos) << plan.status().message();
  EXPECT_NE(plan.status().hint().find("database.cluster_column: none"), std::string::npos) << plan.status().hint();

  // Fork databases (cluster_id present), but the config says there is none: the copy would not rewrite it.
  LabOptions fo;
  fo.split = true;
  Lab fork = MakeLab("fork_vs_stock_cfg", fo, {Tenant("hsa", "3", 3, 0), Tenant("hsc", "4", 2, 100)});
  Config stock_cfg = fork.config;
  stock_cfg.database.cluster_column = kNoClusterColumn;
  auto before = fork.AllChecksums();
  auto stock_mover = TenantMover::Open(stock_cfg);
  ASSERT_TRUE(stock_mover.ok()) << stock_mover.status().ToString();
  auto plan2 = (*stock_mover)->Plan("hsa", "3", "4");
  ASSERT_FALSE(plan2.ok());
  EXPECT_EQ(plan2.status().code(), ExitCode::kBadInput) << plan2.status().ToString();
  EXPECT_NE(plan2.status().message().find("has a cluster_id column"), std::string::npos) << plan2.status().message();
  EXPECT_NE(plan2.status().hint().find("remove database.cluster_column: none"), std::string::npos)
      << plan2.status().hint();
  auto copy = (*stock_mover)->Copy({"m-wrong-cfg", "hsa", "3", "4"});
  EXPECT_EQ(copy.status().code(), ExitCode::kBadInput) << copy.status().ToString();
  EXPECT_EQ(fork.AllChecksums(), before);

  // No cluster column in the shared layout: refused when the mover opens, before anything connects.
  Config shared = stock.config;
  shared.database.layout = DbLayout::kShared;
  shared.database.dsn.env = "HS_STOCK_TEST_UNSET_DSN";
  auto refused = TenantMover::Open(shared);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), ExitCode::kBadInput);
  EXPECT_NE(refused.status().message().find("database.cluster_column: none"), std::string::npos)
      << refused.status().message();
}

}  // namespace
}  // namespace headshift::migrate
