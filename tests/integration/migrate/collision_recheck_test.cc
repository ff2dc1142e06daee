// Values registered on the target cluster after preflight: headscale allocates tailnet IPs and keeps
// given_name unique per cluster in its memory only, so a device registering on the target between
// preflight and copy (or after the copy, before the target reloads) can take a value the tenant's rows
// use, and the database would accept the duplicate. The copy re-checks inside its own transaction and
// refuses without committing anything; TenantMover::TargetCollisions re-checks after the copy.
// Both layouts (param: split), real PostgreSQL.
#include <gtest/gtest.h>

#include "migrate/tenant_mover.h"
#include "tests/integration/migrate/migrate_lab.h"

namespace headshift::migrate {
namespace {

class CollisionRecheckTest : public ::testing::TestWithParam<bool> {  // param: split layout
 protected:
  bool split() const { return GetParam(); }

  // hsa (6 devices: 100.64.0.1-6, fd7a:115c:a1e0::1-6, hsa-dev-0..5) on cluster 3; hsc (4 devices,
  // 100.64.0.101-104) on cluster 4: no overlap, so preflight passes.
  Lab MakeRecheckLab(const std::string& name) {
    LabOptions o;
    o.split = split();
    if (split()) o.id_start = {{"4", 100000}};
    return MakeLab(name + (split() ? "_split" : "_shared"), o,
                   {Tenant("hsa", "3", 6, 0), Tenant("hsc", "4", 4, 100, "198.18.5.1")});
  }
};

// A device of hsc registering on cluster 4 the way headscale writes it, with the given values.
void RegisterOnTarget(const Lab& lab, const std::string& ipv4, const std::string& ipv6, const std::string& given_name) {
  lab.Exec("4",
           "INSERT INTO nodes (cluster_id, machine_key, node_key, disco_key, endpoints, host_info, ipv4, ipv6, hostname, "
           "given_name, user_id, register_method, tags, auth_key_id, last_seen, expiry, approved_routes, created_at, "
           "updated_at) SELECT cluster_id, 'mkey:late', 'nodekey:late', 'discokey:late', endpoints, host_info, '" +
               ipv4 + "', '" + ipv6 + "', 'late-device', '" + given_name +
               "', user_id, register_method, tags, auth_key_id, now(), expiry, approved_routes, now(), now() "
               "FROM nodes WHERE hostname = 'hsc-dev-0'");
}

// Nothing of migration `id` was committed on the target (no record, no recorded rows).
void ExpectNoCopyRecord(const Lab& lab, const std::string& id) {
  EXPECT_EQ(lab.Scalar("4", "SELECT count(*) FROM headshift_copies WHERE migration_id = '" + id + "'"), "0");
  EXPECT_EQ(lab.Scalar("4", "SELECT count(*) FROM headshift_copy_rows WHERE migration_id = '" + id + "'"), "0");
}

// Rows of hsa on cluster 4 (shared: cluster column; split: the target database).
std::string TenantNodesOnTarget(const Lab& lab) {
  return lab.Scalar("4", "SELECT count(*) FROM nodes n JOIN users u ON u.id = n.user_id WHERE u.name = 'hsa' AND "
                         "n.cluster_id::text = '4'");
}

// Preflight passes; a clashing device registers; the copy must refuse, naming the column and value,
// and commit nothing; once the device is gone, the same copy succeeds.
void RefusedThenCopied(const Lab& lab, TenantMover& mover, const std::string& id, const std::string& column,
                       const std::string& value) {
  auto plan = mover.Preflight("hsa", "3", "4");
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();

  const std::string ipv4 = column == "ipv4" ? value : "100.64.9.9";
  const std::string given = column == "given_name" ? value : "late-device";
  RegisterOnTarget(lab, ipv4, "fd7a:115c:a1e0::9999", given);
  const std::string target_nodes = lab.Scalar("4", "SELECT count(*) FROM nodes");
  auto before = lab.AllChecksums();

  MoveRef ref{id, "hsa", "3", "4"};
  auto copy = mover.Copy(ref);
  ASSERT_FALSE(copy.ok()) << "the copy committed a duplicate " << column << " " << value;
  EXPECT_EQ(copy.status().code(), ExitCode::kRefused) << copy.status().ToString();
  const std::string& msg = copy.status().message();
  EXPECT_NE(msg.find("nodes." + column), std::string::npos) << msg;
  EXPECT_NE(msg.find(value), std::string::npos) << msg;
  EXPECT_NE(msg.find("nothing was committed"), std::string::npos) << msg;
  EXPECT_NE(copy.status().hint().find("change the clashing " + column), std::string::npos) << copy.status().hint();
  // Nothing committed anywhere: same rows in every table, no copy record.
  EXPECT_EQ(lab.AllChecksums(), before);
  EXPECT_EQ(lab.Scalar("4", "SELECT count(*) FROM nodes"), target_nodes);
  EXPECT_EQ(TenantNodesOnTarget(lab), "0");
  ExpectNoCopyRecord(lab, id);

  // The operator removes (renumbers) the clashing device: the copy goes through.
  lab.Exec("4", "DELETE FROM nodes WHERE node_key = 'nodekey:late'");
  auto again = mover.Copy(ref);
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_FALSE(again->resumed);
  EXPECT_EQ(again->TotalRows(), 1 + 2 + 6);
  EXPECT_EQ(TenantNodesOnTarget(lab), "6");
  EXPECT_EQ(lab.Scalar("4", "SELECT count(*) FROM headshift_copies WHERE migration_id = '" + id + "'"), "1");
}

TEST_P(CollisionRecheckTest, CopyRefusesAnIpv4TakenOnTheTargetAfterPreflight) {
  Lab lab = MakeRecheckLab("recheck_ip");
  auto mover = OpenMover(lab);
  ASSERT_TRUE(mover);
  RefusedThenCopied(lab, *mover, "m-recheck-ip", "ipv4", "100.64.0.3");
}

TEST_P(CollisionRecheckTest, CopyRefusesAGivenNameTakenOnTheTargetAfterPreflight) {
  Lab lab = MakeRecheckLab("recheck_name");
  auto mover = OpenMover(lab);
  ASSERT_TRUE(mover);
  RefusedThenCopied(lab, *mover, "m-recheck-name", "given_name", "hsa-dev-4");
}

TEST_P(CollisionRecheckTest, TargetCollisionsAfterTheCopyReportsALateIpv6) {
  Lab lab = MakeRecheckLab("recheck_after");
  auto mover = OpenMover(lab);
  ASSERT_TRUE(mover);
  MoveRef ref{"m-recheck-after", "hsa", "3", "4"};
  ASSERT_TRUE(mover->Preflight("hsa", "3", "4").ok());
  auto copy = mover->Copy(ref);
  ASSERT_TRUE(copy.ok()) << copy.status().ToString();

  // The copied rows do not collide with themselves, nor with hsc's.
  auto clean = mover->TargetCollisions(ref);
  ASSERT_TRUE(clean.ok()) << clean.status().ToString();
  EXPECT_TRUE(clean->empty()) << (clean->empty() ? "" : clean->front().message);

  // Before the target reloads, it hands hsa-dev-1's IPv6 to a new device of hsc.
  auto before = lab.AllChecksums();
  RegisterOnTarget(lab, "100.64.9.9", "fd7a:115c:a1e0::2", "late-device");
  auto after = lab.AllChecksums();
  auto found = mover->TargetCollisions(ref);
  ASSERT_TRUE(found.ok()) << found.status().ToString();
  ASSERT_EQ(found->size(), 1u) << (found->empty() ? "" : found->front().message);
  const Conflict& c = found->front();
  EXPECT_EQ(c.kind, "collision");
  EXPECT_EQ(c.table, "nodes");
  EXPECT_EQ(c.column, "ipv6");
  EXPECT_EQ(c.values, std::vector<std::string>{"fd7a:115c:a1e0::2"});
  EXPECT_NE(c.message.find("already used on cluster 4"), std::string::npos) << c.message;
  EXPECT_NE(c.message.find("copied id"), std::string::npos) << c.message;
  EXPECT_FALSE(c.fix.empty());
  EXPECT_EQ(lab.AllChecksums(), after) << "the check wrote something";
  EXPECT_NE(after, before);

  // A migration that copied nothing has nothing to check.
  auto none = mover->TargetCollisions({"m-never-copied", "hsa", "3", "4"});
  EXPECT_FALSE(none.ok());
  EXPECT_EQ(none.status().code(), ExitCode::kBadInput) << none.status().ToString();
}

INSTANTIATE_TEST_SUITE_P(Layouts, CollisionRecheckTest, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& i) { return i.param ? "Split" : "Shared"; });

}  // namespace
}  // namespace headshift::migrate
