// Moving a tenant for real: shared layout (UPDATE of cluster_id in one transaction) and split layout
// (binary COPY streamed between two databases), with and without id collisions; idempotent re-runs;
// verification; retire with archive; rollback restoring every table's checksum exactly.
#include <gtest/gtest.h>

#include "migrate/tenant_mover.h"
#include "tests/fixtures/cli_runner.h"
#include "tests/integration/migrate/migrate_lab.h"

namespace headshift::migrate {
namespace {

class MoveTest : public ::testing::TestWithParam<bool> {  // param: text cluster ids
 protected:
  bool text() const { return GetParam(); }
};

TEST_P(MoveTest, SharedMoveThenRollbackRestoresChecksums) {
  LabOptions o;
  o.text_ids = text();
  Lab lab = MakeLab("shared_move", o, {Tenant("hsa", "3", 25, 0), Tenant("hsb", "3", 10, 100), Tenant("hsc", "4", 7, 500, "198.18.5.1")});
  auto before = lab.AllChecksums();
  auto mover = OpenMover(lab);
  ASSERT_TRUE(mover);

  auto where = mover->LocateTenant("hsa");
  ASSERT_TRUE(where.ok()) << where.status().ToString();
  ASSERT_TRUE(where->has_value());
  EXPECT_EQ(**where, "3");

  auto plan = mover->Preflight("hsa", "3", "4");
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  ASSERT_EQ(plan->tables.size(), 3u);
  EXPECT_EQ(plan->tables[0].table, "users");
  EXPECT_EQ(plan->tables[0].rows, 1);
  EXPECT_EQ(plan->tables[1].table, "pre_auth_keys");
  EXPECT_EQ(plan->tables[1].rows, 2);
  EXPECT_EQ(plan->tables[2].table, "nodes");
  EXPECT_EQ(plan->tables[2].rows, 25);
  EXPECT_EQ(plan->cluster_type, text() ? "text" : "bigint");
  EXPECT_EQ(lab.AllChecksums(), before) << "preflight wrote something";

  MoveRef ref{"m-shared-1", "hsa", "3", "4"};
  auto copy = mover->Copy(ref);
  ASSERT_TRUE(copy.ok()) << copy.status().ToString();
  EXPECT_EQ(copy->TotalRows(), 28);
  EXPECT_FALSE(copy->resumed);
  // Every row of hsa is on cluster 4 now; nothing else moved.
  EXPECT_EQ(lab.Scalar("3", "SELECT count(*) FROM nodes n JOIN users u ON u.id = n.user_id WHERE u.name = 'hsa' AND n.cluster_id::text = '4'"), "25");
  EXPECT_EQ(lab.Scalar("3", "SELECT count(*) FROM pre_auth_keys k JOIN users u ON u.id = k.user_id WHERE u.name = 'hsa' AND k.cluster_id::text = '4'"), "2");
  EXPECT_EQ(lab.Scalar("3", "SELECT cluster_id::text FROM users WHERE name = 'hsa'"), "4");
  EXPECT_EQ(lab.Scalar("3", "SELECT count(*) FROM nodes WHERE cluster_id::text = '3'"), "10");
  EXPECT_EQ(lab.Scalar("3", "SELECT count(*) FROM nodes WHERE cluster_id::text = '4'"), "32");
  where = mover->LocateTenant("hsa");
  ASSERT_TRUE(where.ok());
  EXPECT_EQ(**where, "4");

  // Re-running the copy (a resumed migration) converges: nothing moves twice.
  auto again = mover->Copy(ref);
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_TRUE(again->resumed);
  EXPECT_EQ(again->TotalRows(), 28);

  auto v = mover->Verify(ref);
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  EXPECT_TRUE(v->ok);
  ASSERT_EQ(v->tables.size(), 3u);
  EXPECT_EQ(v->tables[2].target_rows, 25);
  EXPECT_EQ(v->tables[2].target_checksum, v->tables[2].copy_checksum);

  auto rb = mover->Rollback(ref);
  ASSERT_TRUE(rb.ok()) << rb.status().ToString();
  EXPECT_EQ(lab.AllChecksums(), before) << "rollback did not restore every table exactly";
  // Idempotent.
  auto rb2 = mover->Rollback(ref);
  ASSERT_TRUE(rb2.ok()) << rb2.status().ToString();
  EXPECT_TRUE(rb2->nothing_to_do);
}

TEST_P(MoveTest, SplitCopyKeepsFreeIdsRewritesClusterAndRetires) {
  LabOptions o;
  o.split = true;
  o.text_ids = text();
  o.id_start = {{"4", 100000}};  // target ids never collide with the source's
  Lab lab = MakeLab("split_noclash", o,
                    {Tenant("hsa", "3", 30, 0), Tenant("hsb", "3", 5, 100), Tenant("hsc", "4", 8, 500, "198.18.5.1")});
  auto src_before = lab.Checksums("3");
  auto mover = OpenMover(lab);
  ASSERT_TRUE(mover);
  auto plan = mover->Preflight("hsa", "3", "4");
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  for (const auto& t : plan->tables) EXPECT_EQ(t.id_remaps, 0) << t.table;

  MoveRef ref{"m-split-1", "hsa", "3", "4"};
  auto copy = mover->Copy(ref);
  ASSERT_TRUE(copy.ok()) << copy.status().ToString();
  EXPECT_EQ(copy->TotalRows(), 33);
  EXPECT_TRUE(copy->remaps.empty()) << copy->ToJson().dump();
  EXPECT_EQ(lab.Checksums("3"), src_before) << "the copy changed the source";
  // Same ids, same content apart from cluster_id.
  std::string q = "SELECT string_agg(id || '/' || node_key || '/' || ipv4 || '/' || COALESCE(endpoints, '') || '/' || "
                  "user_id || '/' || auth_key_id || '/' || cluster_id::text, ',' ORDER BY id) FROM nodes WHERE user_id = "
                  "(SELECT id FROM users WHERE name = 'hsa')";
  std::string src_rows = lab.Scalar("3", q), tgt_rows = lab.Scalar("4", q);
  ASSERT_FALSE(src_rows.empty());
  EXPECT_EQ(tgt_rows.size(), src_rows.size());
  EXPECT_NE(tgt_rows.find("/4,"), std::string::npos);
  EXPECT_EQ(lab.Scalar("4", "SELECT count(*) FROM nodes WHERE cluster_id::text <> '4'"), "0");
  // Sequences moved past the copied ids, so headscale's next insert cannot collide.
  EXPECT_EQ(lab.Scalar("4", "SELECT nextval('users_id_seq') > (SELECT max(id) FROM users)"), "t");
  EXPECT_EQ(lab.Scalar("4", "SELECT nextval('nodes_id_seq') > (SELECT max(id) FROM nodes)"), "t");

  auto v = mover->Verify(ref);
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  EXPECT_TRUE(v->ok);
  for (const auto& t : v->tables) {
    EXPECT_EQ(t.source_rows, t.target_rows) << t.table;
    EXPECT_EQ(t.source_checksum, t.target_checksum) << t.table;
  }
  // The tenant now exists twice until the source is retired.
  auto where = mover->LocateTenant("hsa");
  EXPECT_FALSE(where.ok());
  EXPECT_EQ(where.status().code(), ExitCode::kRefused);

  auto ret = mover->Retire(ref, /*archive=*/true);
  ASSERT_TRUE(ret.ok()) << ret.status().ToString();
  EXPECT_EQ(ret->archive_schema, "headshift_archive");
  EXPECT_EQ(lab.Scalar("3", "SELECT count(*) FROM users WHERE name = 'hsa'"), "0");
  EXPECT_EQ(lab.Scalar("3", "SELECT count(*) FROM nodes"), "5");
  EXPECT_EQ(lab.Scalar("3", "SELECT count(*) FROM headshift_archive.nodes WHERE headshift_migration_id = 'm-split-1'"), "30");
  where = mover->LocateTenant("hsa");
  ASSERT_TRUE(where.ok()) << where.status().ToString();
  EXPECT_EQ(**where, "4");
  // Retire is idempotent; rollback after retire needs an operator.
  auto ret2 = mover->Retire(ref, true);
  ASSERT_TRUE(ret2.ok());
  EXPECT_TRUE(ret2->already_retired);
  auto rb = mover->Rollback(ref);
  EXPECT_EQ(rb.status().code(), ExitCode::kNeedsOperator);
}

TEST_P(MoveTest, SplitCopyRemapsTakenIdsAndRollbackRestoresChecksums) {
  LabOptions o;
  o.split = true;
  o.text_ids = text();
  // Both databases start their ids at 1: hsa's user/keys/nodes ids are all taken on the target.
  Lab lab = MakeLab("split_clash", o,
                    {Tenant("hsa", "3", 40, 0), Tenant("hsc", "4", 50, 500, "198.18.5.1")});
  auto before = lab.AllChecksums();
  auto mover = OpenMover(lab);
  ASSERT_TRUE(mover);
  auto plan = mover->Preflight("hsa", "3", "4");
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  EXPECT_EQ(plan->tables[0].id_remaps, 1);
  EXPECT_EQ(plan->tables[1].id_remaps, 2);
  EXPECT_EQ(plan->tables[2].id_remaps, 40);

  MoveRef ref{"m-split-2", "hsa", "3", "4"};
  auto copy = mover->Copy(ref);
  ASSERT_TRUE(copy.ok()) << copy.status().ToString();
  EXPECT_EQ(copy->remaps["users"].size(), 1u);
  EXPECT_EQ(copy->remaps["nodes"].size(), 40u);
  // Foreign keys follow the new ids: every hsa node points at hsa's new user and one of its keys.
  EXPECT_EQ(lab.Scalar("4", "SELECT count(*) FROM nodes n JOIN users u ON u.id = n.user_id JOIN pre_auth_keys k ON "
                            "k.id = n.auth_key_id AND k.user_id = u.id WHERE u.name = 'hsa'"),
            "40");
  EXPECT_EQ(lab.Scalar("4", "SELECT count(*) FROM nodes n JOIN users u ON u.id = n.user_id WHERE u.name = 'hsc'"), "50");
  // Node keys survived the move (what devices present when they reconnect).
  EXPECT_EQ(lab.Scalar("3", "SELECT md5(string_agg(node_key || machine_key, ',' ORDER BY node_key)) FROM nodes"),
            lab.Scalar("4", "SELECT md5(string_agg(node_key || machine_key, ',' ORDER BY node_key)) FROM nodes n "
                            "JOIN users u ON u.id = n.user_id WHERE u.name = 'hsa'"));
  auto v = mover->Verify(ref);
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  EXPECT_TRUE(v->ok);

  auto rb = mover->Rollback(ref);
  ASSERT_TRUE(rb.ok()) << rb.status().ToString();
  EXPECT_EQ(rb->rows[2].rows, 40);
  EXPECT_EQ(lab.AllChecksums(), before) << "rollback did not restore every table exactly";
  // A new migration can copy again after the rollback.
  auto copy2 = mover->Copy({"m-split-3", "hsa", "3", "4"});
  ASSERT_TRUE(copy2.ok()) << copy2.status().ToString();
  EXPECT_FALSE(copy2->resumed);
}

TEST(CopyModesTest, PlainRoleCopiesWithPerRowForeignKeyChecks) {
  LabOptions o;
  o.split = true;
  Lab lab = MakeLab("plain_role", o, {Tenant("hsa", "3", 20, 0), Tenant("hsc", "4", 10, 500, "198.18.5.1")});
  // headscale's usual database role: owns nothing special, may not SET session_replication_role.
  for (const std::string c : {"3", "4"}) {
    lab.Exec(c, "DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'hs_plain') THEN "
                "CREATE ROLE hs_plain LOGIN; END IF; END $$; "
                "GRANT USAGE, CREATE ON SCHEMA public TO hs_plain; "
                "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO hs_plain; "
                "GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA public TO hs_plain");
  }
  Config cfg = lab.config;
  for (auto& cc : cfg.clusters) {
    std::string dsn = lab.dsn.at(cc.id);
    dsn.replace(dsn.find("user=postgres"), 13, "user=hs_plain");
    std::string env = "HS_MIGRATE_TEST_PLAIN_" + cc.id;
    setenv(env.c_str(), dsn.c_str(), 1);
    cc.dsn.env = env;
  }
  auto mover = TenantMover::Open(cfg);
  ASSERT_TRUE(mover.ok());
  MoveRef ref{"m-plain", "hsa", "3", "4"};
  auto copy = (*mover)->Copy(ref);
  ASSERT_TRUE(copy.ok()) << copy.status().ToString();
  EXPECT_EQ(copy->fk_checks, "triggers");
  EXPECT_EQ(copy->tables[2].rows, 20);
  auto v = (*mover)->Verify(ref);
  EXPECT_TRUE(v.ok()) << v.status().ToString();
  // The superuser takes the bulk path for the same copy.
  auto su = OpenMover(lab);
  ASSERT_TRUE(su->Rollback(ref).ok());
  auto again = su->Copy({"m-su", "hsa", "3", "4"});
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(again->fk_checks, "bulk");
  // Forcing per-row checks is possible.
  ASSERT_TRUE(su->Rollback({"m-su", "hsa", "3", "4"}).ok());
  CopyOptions per_row;
  per_row.per_row_fk_checks = true;
  auto forced = su->Copy({"m-su2", "hsa", "3", "4"}, per_row);
  ASSERT_TRUE(forced.ok()) << forced.status().ToString();
  EXPECT_EQ(forced->fk_checks, "triggers");
}

TEST(CopyModesTest, CopyRefusesReferencesIntoAnotherTenantEvenWithoutPreflight) {
  LabOptions o;
  o.split = true;
  Lab lab = MakeLab("copy_dangling", o, {Tenant("hsa", "3", 5, 0), Tenant("hsb", "3", 5, 100), Tenant("hsc", "4", 5, 500)});
  lab.Exec("3", "UPDATE nodes SET auth_key_id = (SELECT min(k.id) FROM pre_auth_keys k JOIN users u ON u.id = k.user_id "
                "WHERE u.name = 'hsb') WHERE hostname = 'hsa-dev-1'");
  auto before = lab.AllChecksums();
  auto mover = OpenMover(lab);
  auto copy = mover->Copy({"m-dangling", "hsa", "3", "4"});
  EXPECT_EQ(copy.status().code(), ExitCode::kRefused) << copy.status().ToString();
  EXPECT_NE(copy.status().message().find("nodes.auth_key_id: 1 row(s)"), std::string::npos) << copy.status().message();
  EXPECT_EQ(lab.AllChecksums(), before);
}

TEST(CopyModesTest, ForkTableNamedInAProfileMovesWithRemappedKeys) {
  LabOptions o;
  o.split = true;  // colliding ids: node_routes.node_id must follow the nodes' new ids
  Lab lab = MakeLab("fork_profile", o, {Tenant("hsa", "3", 6, 0), Tenant("hsc", "4", 9, 500, "198.18.5.1")});
  for (const std::string c : {"3", "4"}) {
    lab.Exec(c, "CREATE TABLE node_routes (id bigserial PRIMARY KEY, cluster_id bigint NOT NULL DEFAULT 1, "
                "node_id bigint REFERENCES nodes(id) ON DELETE CASCADE, prefix text, enabled boolean)");
  }
  lab.Exec("3", "INSERT INTO node_routes (cluster_id, node_id, prefix, enabled) SELECT 3, id, '10.' || id || '.0.0/16', "
                "true FROM nodes");
  lab.Exec("4", "INSERT INTO node_routes (cluster_id, node_id, prefix, enabled) SELECT 4, id, '10.' || id || '.0.0/16', "
                "true FROM nodes");
  // The built-in profile does not know the fork's table: preflight refuses.
  {
    auto mover = OpenMover(lab);
    auto plan = mover->Plan("hsa", "3", "4");
    ASSERT_TRUE(plan.ok()) << plan.status().ToString();
    ASSERT_FALSE(plan->ok());
    EXPECT_EQ(plan->conflicts[0].kind, "unclassified_table");
  }
  // The operator's profile adds it; no code change.
  std::string profile = DefaultSchemaProfileYaml();
  profile.replace(profile.find("static:"), 7,
                  "  - table: node_routes\n    owners: [node_id]\n    unique_in_cluster: [prefix]\nstatic:");
  std::string path = headshift::testing::WriteTempFile("fork-profile.yaml", profile);
  Config cfg = lab.config;
  cfg.database.schema_profile = path;
  auto mover = TenantMover::Open(cfg);
  ASSERT_TRUE(mover.ok()) << mover.status().ToString();
  EXPECT_EQ((*mover)->profile().tables.size(), 4u);  // pre_auth_keys, nodes, acl_policies (optional), node_routes
  // hsc's routes use prefixes 10.<id>.0.0/16 for ids 1..9 too: collisions on the target cluster.
  auto clash = (*mover)->Plan("hsa", "3", "4");
  ASSERT_TRUE(clash.ok());
  ASSERT_EQ(clash->conflicts.size(), 1u) << clash->ToText();
  EXPECT_EQ(clash->conflicts[0].column, "prefix");
  lab.Exec("3", "UPDATE node_routes SET prefix = '172.16.' || id || '.0/24'");
  auto plan = (*mover)->Preflight("hsa", "3", "4");
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  EXPECT_EQ(plan->tables.back().table, "node_routes");
  EXPECT_EQ(plan->tables.back().rows, 6);
  MoveRef ref{"m-fork", "hsa", "3", "4"};
  auto copy = (*mover)->Copy(ref);
  ASSERT_TRUE(copy.ok()) << copy.status().ToString();
  EXPECT_EQ(copy->remaps["node_routes"].size(), 6u);
  EXPECT_EQ(lab.Scalar("4", "SELECT count(*) FROM node_routes r JOIN nodes n ON n.id = r.node_id JOIN users u ON "
                            "u.id = n.user_id WHERE u.name = 'hsa' AND r.prefix LIKE '172.16.%' AND r.cluster_id = 4"),
            "6");
  auto v = (*mover)->Verify(ref);
  EXPECT_TRUE(v.ok()) << v.status().ToString();
  auto before_rb = lab.Checksums("3");
  auto rb = (*mover)->Rollback(ref);
  ASSERT_TRUE(rb.ok()) << rb.status().ToString();
  EXPECT_EQ(lab.Scalar("4", "SELECT count(*) FROM node_routes"), "9");
  EXPECT_EQ(lab.Checksums("3"), before_rb);
}

TEST(CopyModesTest, SharedRetireClosesTheRecordAndEndsRollback) {
  Lab lab = MakeLab("shared_retire", {}, {Tenant("hsa", "3", 4, 0), Tenant("hsc", "4", 2, 100)});
  auto mover = OpenMover(lab);
  MoveRef ref{"m-shared-retire", "hsa", "3", "4"};
  ASSERT_TRUE(mover->Copy(ref).ok());
  EXPECT_EQ(lab.Scalar("3", "SELECT count(*) FROM headshift_copy_rows"), "7");
  auto after_copy = lab.Checksums("3");
  auto ret = mover->Retire(ref, /*archive=*/true);
  ASSERT_TRUE(ret.ok()) << ret.status().ToString();
  EXPECT_TRUE(ret->deleted.empty());  // nothing stays behind in the shared layout
  EXPECT_EQ(lab.Scalar("3", "SELECT count(*) FROM headshift_copy_rows"), "0");
  EXPECT_EQ(lab.Checksums("3"), after_copy);
  auto rb = mover->Rollback(ref);
  EXPECT_EQ(rb.status().code(), ExitCode::kNeedsOperator) << rb.status().ToString();
  EXPECT_EQ(lab.Scalar("3", "SELECT cluster_id FROM users WHERE name = 'hsa'"), "4");
}

INSTANTIATE_TEST_SUITE_P(ClusterIdTypes, MoveTest, ::testing::Values(false, true),
                         [](const auto& i) { return std::string(i.param ? "text" : "bigint"); });

}  // namespace
}  // namespace headshift::migrate
