// Preflight: every conflict is reported at once, with exit code 3 (Refused), and no database changes
// (checksums of every table, before = after).
#include <gtest/gtest.h>

#include <set>

#include "migrate/tenant_mover.h"
#include "tests/integration/migrate/migrate_lab.h"

namespace headshift::migrate {
namespace {

std::set<std::string> Kinds(const MovePlan& p) {
  std::set<std::string> k;
  for (const auto& c : p.conflicts) k.insert(c.kind + (c.column.empty() ? "" : ":" + c.column));
  return k;
}

// Runs Preflight and checks: Refused, nothing written anywhere. Returns the plan.
MovePlan RefusedPreflight(const Lab& lab, const std::string& tenant, const std::string& from, const std::string& to) {
  auto before = lab.AllChecksums();
  auto mover = TenantMover::Open(lab.config);
  EXPECT_TRUE(mover.ok()) << mover.status().ToString();
  MovePlan refused;
  auto r = (*mover)->Preflight(tenant, from, to, &refused);
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ExitCode::kRefused) << r.status().ToString();
  EXPECT_EQ(lab.AllChecksums(), before) << "preflight changed a database";
  // Plan() reports the same conflicts without failing.
  auto plan = (*mover)->Plan(tenant, from, to);
  EXPECT_TRUE(plan.ok()) << plan.status().ToString();
  if (plan.ok()) {
    EXPECT_EQ(Kinds(*plan), Kinds(refused));
  }
  return refused;
}

TEST(PreflightTest, SplitReportsEveryConflictAtOnceAndWritesNothing) {
  LabOptions o;
  o.split = true;
  o.id_start = {{"4", 100000}};
  // hsz on cluster 4 uses the same tailnet IPs as hsa (offset 0): IPv4 and IPv6 collisions.
  Lab lab = MakeLab("pf_split", o, {Tenant("hsa", "3", 12, 0), Tenant("hsb", "3", 4, 100), Tenant("hsz", "4", 3, 0)});
  // given_name, node_key, machine_key collisions with hsa's nodes.
  lab.Exec("4", "UPDATE nodes SET given_name = 'hsa-dev-7' WHERE hostname = 'hsz-dev-0'");
  std::string nk = lab.Scalar("3", "SELECT node_key FROM nodes WHERE hostname = 'hsa-dev-4'");
  std::string mk = lab.Scalar("3", "SELECT machine_key FROM nodes WHERE hostname = 'hsa-dev-5'");
  lab.Exec("4", "UPDATE nodes SET node_key = '" + nk + "' WHERE hostname = 'hsz-dev-1'");
  lab.Exec("4", "UPDATE nodes SET machine_key = '" + mk + "' WHERE hostname = 'hsz-dev-2'");
  // Pre-auth key prefix collision (unique index idx_pre_auth_keys_prefix on the target).
  std::string prefix = lab.Scalar("3", "SELECT min(prefix) FROM pre_auth_keys k JOIN users u ON u.id = k.user_id WHERE u.name = 'hsa'");
  lab.Exec("4", "UPDATE pre_auth_keys SET prefix = '" + prefix + "' WHERE id = (SELECT min(id) FROM pre_auth_keys)");
  // User clash through a unique index: hsa is an OIDC user whose provider_identifier a target user has.
  lab.Exec("3", "UPDATE users SET provider_identifier = 'oidc|42' WHERE name = 'hsa'");
  lab.Exec("4", "INSERT INTO users (name, provider_identifier, cluster_id) VALUES ('someone', 'oidc|42', 4)");
  // A node of hsa registered with hsb's key: the copy would leave it pointing nowhere.
  lab.Exec("3", "UPDATE nodes SET auth_key_id = (SELECT min(k.id) FROM pre_auth_keys k JOIN users u ON u.id = k.user_id "
                "WHERE u.name = 'hsb') WHERE hostname = 'hsa-dev-9'");
  // A fork table referencing nodes that the profile does not know.
  lab.Exec("3", "CREATE TABLE node_notes (id bigserial PRIMARY KEY, node_id bigint REFERENCES nodes(id), note text)");
  // Schema drift: the target has a column the source lacks.
  lab.Exec("4", "ALTER TABLE nodes ADD COLUMN extra text");

  MovePlan p = RefusedPreflight(lab, "hsa", "3", "4");
  std::set<std::string> k = Kinds(p);
  for (const char* want :
       {"collision:ipv4", "collision:ipv6", "collision:given_name", "collision:node_key", "collision:machine_key",
        "unique_index:prefix", "unique_index:provider_identifier", "dangling_reference:auth_key_id",
        "unclassified_table", "schema_drift:extra"}) {
    EXPECT_TRUE(k.count(want)) << "missing conflict " << want << "\n" << p.ToText();
  }
  // Messages name the offending values and ids.
  for (const auto& c : p.conflicts) {
    if (c.kind == "collision" && c.column == "ipv4") {
      EXPECT_EQ(c.values.size(), 3u);
      EXPECT_NE(c.message.find("100.64.0.1"), std::string::npos) << c.message;
    }
    if (c.kind == "collision" && c.column == "node_key") {
      EXPECT_EQ(c.values, std::vector<std::string>{nk});
    }
    EXPECT_FALSE(c.fix.empty()) << c.kind;
  }
  // The copy itself refuses drift too, without writing.
  auto before = lab.AllChecksums();
  auto mover = TenantMover::Open(lab.config);
  ASSERT_TRUE(mover.ok());
  auto copy = (*mover)->Copy({"m-drift", "hsa", "3", "4"});
  EXPECT_EQ(copy.status().code(), ExitCode::kRefused) << copy.status().ToString();
  auto after = lab.AllChecksums();
  EXPECT_EQ(after, before);
}

TEST(PreflightTest, TenantMissingOnTargetAlreadyUnknownClusterAndCordon) {
  LabOptions o;
  o.split = true;
  o.clusters = {"3", "4", "5"};
  Lab lab = MakeLab("pf_presence", o, {Tenant("hsa", "3", 3, 0), Tenant("hsa", "4", 3, 100), Tenant("hsb", "5", 2, 200)});
  EXPECT_TRUE(Kinds(RefusedPreflight(lab, "hsa", "3", "4")).count("tenant_on_target:name"));
  MovePlan missing = RefusedPreflight(lab, "nobody", "3", "5");
  EXPECT_TRUE(Kinds(missing).count("tenant_missing:name"));
  MovePlan wrong_from = RefusedPreflight(lab, "hsb", "3", "4");
  ASSERT_TRUE(Kinds(wrong_from).count("tenant_missing:name"));
  EXPECT_NE(wrong_from.conflicts[0].message.find("it is on cluster 5"), std::string::npos) << wrong_from.conflicts[0].message;
  EXPECT_TRUE(Kinds(RefusedPreflight(lab, "hsb", "5", "9")).count("unknown_cluster"));
  EXPECT_TRUE(Kinds(RefusedPreflight(lab, "hsb", "5", "5")).count("same_cluster"));

  auto mover = TenantMover::Open(lab.config);
  ASSERT_TRUE(mover.ok());
  ASSERT_TRUE((*mover)->cordons().Cordon("3", "draining for upgrade").ok());
  MovePlan cordoned = RefusedPreflight(lab, "hsb", "5", "3");
  EXPECT_TRUE(Kinds(cordoned).count("target_cordoned"));
  ASSERT_TRUE((*mover)->cordons().Uncordon("3").ok());
  auto ok = (*mover)->Preflight("hsb", "5", "3");
  EXPECT_TRUE(ok.ok()) << ok.status().ToString();
  // The copy refuses a tenant that already exists on the target, writing nothing.
  auto before = lab.AllChecksums();
  auto copy = (*mover)->Copy({"m-dup", "hsa", "3", "4"});
  EXPECT_EQ(copy.status().code(), ExitCode::kRefused) << copy.status().ToString();
  EXPECT_EQ(lab.AllChecksums(), before);
}

TEST(PreflightTest, SharedCollisionsAndInconsistentRows) {
  LabOptions o;
  Lab lab = MakeLab("pf_shared", o, {Tenant("hsa", "3", 10, 0), Tenant("hsb", "3", 3, 50), Tenant("hsz", "4", 4, 8)});
  // hsz's IPs (offsets 9..12) overlap hsa's (1..10) on cluster 4; a hsa node already carries cluster 4.
  lab.Exec("3", "UPDATE nodes SET cluster_id = 4 WHERE hostname = 'hsa-dev-0'");
  lab.Exec("3", "UPDATE nodes SET given_name = 'hsa-dev-5' WHERE hostname = 'hsz-dev-3'");
  MovePlan p = RefusedPreflight(lab, "hsa", "3", "4");
  auto k = Kinds(p);
  EXPECT_TRUE(k.count("collision:ipv4")) << p.ToText();
  EXPECT_TRUE(k.count("collision:ipv6"));
  EXPECT_TRUE(k.count("collision:given_name"));
  EXPECT_TRUE(k.count("cluster_mismatch:cluster_id"));
  for (const auto& c : p.conflicts) {
    // The shared layout compares only with cluster 4's rows, never with hsa's own.
    if (c.kind == "collision" && c.column == "ipv4") {
      EXPECT_EQ(c.values.size(), 2u) << c.message;
    }
  }
  // Moving hsb (no overlap) is fine in the same database.
  auto mover = TenantMover::Open(lab.config);
  ASSERT_TRUE(mover.ok());
  auto ok = (*mover)->Preflight("hsb", "3", "4");
  EXPECT_TRUE(ok.ok()) << ok.status().ToString();
}

}  // namespace
}  // namespace headshift::migrate
