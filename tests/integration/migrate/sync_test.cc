// After the copy: verify catches a row altered behind headshift's back (and undoes the copy); catch-up
// applies late source writes (changed, new, deleted rows) and reports a row changed on both sides as a
// conflict with both versions; a dropped connection mid-copy leaves the target unchanged and a re-run
// converges.
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <thread>

#include "migrate/tenant_mover.h"
#include "tests/integration/migrate/migrate_lab.h"

namespace headshift::migrate {
namespace {

Lab SplitLab(const std::string& name, int devices = 20) {
  LabOptions o;
  o.split = true;
  // Colliding ids (both databases start at 1): the copy remaps, so catch-up must map too. Tailnet IPs do
  // not collide (hsc's start past hsa's), or the copy would refuse.
  const int hsc_ip_offset = devices < 500 ? 500 : devices + 500;
  return MakeLab(name, o, {Tenant("hsa", "3", devices, 0), Tenant("hsb", "3", 5, 1000),
                           Tenant("hsc", "4", 12, hsc_ip_offset, "198.18.5.1")});
}

TEST(VerifyTest, TargetRowAlteredBehindItsBackFailsAndUndoesTheCopy) {
  Lab lab = SplitLab("verify_tamper");
  auto target_before = lab.Checksums("4");
  auto mover = OpenMover(lab);
  MoveRef ref{"m-tamper", "hsa", "3", "4"};
  ASSERT_TRUE(mover->Copy(ref).ok());
  // Something edits a copied row on the target (the cluster is live: an admin, a script, a bug).
  lab.Exec("4", "UPDATE nodes SET given_name = 'tampered' WHERE hostname = 'hsa-dev-3'");
  VerifyReport detail;
  auto v = mover->Verify(ref, &detail);
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.status().code(), ExitCode::kFailed);
  EXPECT_NE(v.status().message().find("changed on target"), std::string::npos) << v.status().message();
  ASSERT_EQ(detail.mismatches.size(), 1u);
  EXPECT_EQ(detail.mismatches[0].table, "nodes");
  EXPECT_TRUE(detail.undone);
  EXPECT_FALSE(detail.ok);
  EXPECT_EQ(lab.Checksums("4"), target_before) << "the failed copy was not undone";
}

TEST(VerifyTest, SourceChangesAfterTheCopyAreLateWritesNotMismatches) {
  Lab lab = SplitLab("verify_late");
  auto mover = OpenMover(lab);
  MoveRef ref{"m-late", "hsa", "3", "4"};
  ASSERT_TRUE(mover->Copy(ref).ok());
  lab.Exec("3", "UPDATE nodes SET last_seen = now() + interval '1 hour' WHERE hostname = 'hsa-dev-1'");
  auto v = mover->Verify(ref);
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  EXPECT_TRUE(v->ok);
  ASSERT_EQ(v->late_writes.size(), 1u);
  EXPECT_EQ(v->late_writes[0].what, "changed on source");
}

TEST(VerifyTest, SharedRowChangedAfterTheMoveFailsAndMovesBack) {
  Lab lab = MakeLab("verify_shared", {}, {Tenant("hsa", "3", 6, 0), Tenant("hsc", "4", 3, 100)});
  auto before = lab.AllChecksums();
  auto mover = OpenMover(lab);
  MoveRef ref{"m-shared-tamper", "hsa", "3", "4"};
  ASSERT_TRUE(mover->Copy(ref).ok());
  lab.Exec("3", "UPDATE nodes SET ipv4 = '100.64.9.9' WHERE hostname = 'hsa-dev-2'");
  VerifyReport detail;
  auto v = mover->Verify(ref, &detail);
  ASSERT_FALSE(v.ok());
  EXPECT_TRUE(detail.undone);
  EXPECT_EQ(lab.Scalar("3", "SELECT count(*) FROM nodes WHERE cluster_id = 4"), "3");
  lab.Exec("3", "UPDATE nodes SET ipv4 = '100.64.0.3' WHERE hostname = 'hsa-dev-2'");
  EXPECT_EQ(lab.AllChecksums(), before);
}

TEST(CatchUpTest, AppliesLateWritesAndReportsTwoSidedConflicts) {
  Lab lab = SplitLab("catchup");
  auto mover = OpenMover(lab);
  MoveRef ref{"m-catchup", "hsa", "3", "4"};
  auto copy = mover->Copy(ref);
  ASSERT_TRUE(copy.ok()) << copy.status().ToString();
  ASSERT_FALSE(copy->remaps["nodes"].empty());

  // Source-only changes: endpoints and host_info of a device that roamed; last_seen of another.
  lab.Exec("3", "UPDATE nodes SET endpoints = '[\"203.0.113.77:41641\"]', host_info = '{\"OS\":\"ios\"}' WHERE hostname = 'hsa-dev-1'");
  lab.Exec("3", "UPDATE nodes SET last_seen = '2030-01-01 00:00:00+00' WHERE hostname = 'hsa-dev-2'");
  // A device registered during the cut, with a new pre-auth key (both new rows, ids taken on the target).
  lab.Exec("3", "INSERT INTO pre_auth_keys (cluster_id, prefix, user_id, reusable, tags, created_at) "
                "SELECT 3, 'latekeyprefix', id, false, '[]', now() FROM users WHERE name = 'hsa'");
  lab.Exec("3", "INSERT INTO nodes (cluster_id, machine_key, node_key, endpoints, ipv4, ipv6, hostname, given_name, user_id, "
                "auth_key_id, register_method, tags) SELECT 3, 'mkey:late', 'nodekey:late', '[\"198.51.100.9:41641\"]', "
                "'100.64.3.250', 'fd7a:115c:a1e0::3fa', 'late', 'late', u.id, k.id, 'authkey', '[]' FROM users u "
                "JOIN pre_auth_keys k ON k.user_id = u.id AND k.prefix = 'latekeyprefix' WHERE u.name = 'hsa'");
  // A device removed on the source.
  lab.Exec("3", "DELETE FROM nodes WHERE hostname = 'hsa-dev-4'");
  // Target-only change (the target serves the tenant now): kept.
  lab.Exec("4", "UPDATE nodes SET last_seen = '2031-01-01 00:00:00+00' WHERE hostname = 'hsa-dev-5'");
  // Both sides changed the same device differently: a conflict.
  lab.Exec("3", "UPDATE nodes SET given_name = 'from-source' WHERE hostname = 'hsa-dev-6'");
  lab.Exec("4", "UPDATE nodes SET given_name = 'from-target' WHERE hostname = 'hsa-dev-6'");

  auto cu = mover->CatchUp(ref);
  ASSERT_TRUE(cu.ok()) << cu.status().ToString();
  const TableCatchUp* nodes = nullptr;
  const TableCatchUp* keys = nullptr;
  for (const auto& t : cu->tables) {
    if (t.table == "nodes") nodes = &t;
    if (t.table == "pre_auth_keys") keys = &t;
  }
  ASSERT_TRUE(nodes && keys);
  EXPECT_EQ(nodes->updated, 2);
  EXPECT_EQ(nodes->inserted, 1);
  EXPECT_EQ(nodes->deleted, 1);
  EXPECT_EQ(nodes->target_only, 1);
  EXPECT_EQ(nodes->conflicts, 1);
  EXPECT_EQ(keys->inserted, 1);
  ASSERT_EQ(cu->conflicts.size(), 1u);
  const CatchUpConflict& c = cu->conflicts[0];
  EXPECT_EQ(c.what, "changed on both sides");
  EXPECT_EQ(c.source_version["given_name"], "from-source");
  EXPECT_EQ(c.target_version["given_name"], "from-target");
  EXPECT_EQ(c.source_version["hostname"], "hsa-dev-6");
  EXPECT_EQ(c.source_version["cluster_id"], 4);  // normalised to the target

  // The target now has the source's changes, the new device (FKs mapped to the copied rows) and not the
  // deleted one; the conflicting row keeps the target's version; the target-only change stays.
  EXPECT_EQ(lab.Scalar("4", "SELECT endpoints || host_info FROM nodes WHERE hostname = 'hsa-dev-1'"),
            "[\"203.0.113.77:41641\"]{\"OS\":\"ios\"}");
  EXPECT_EQ(lab.Scalar("4", "SELECT last_seen = '2030-01-01 00:00:00+00' FROM nodes WHERE hostname = 'hsa-dev-2'"), "t");
  EXPECT_EQ(lab.Scalar("4", "SELECT count(*) FROM nodes n JOIN users u ON u.id = n.user_id JOIN pre_auth_keys k ON "
                            "k.id = n.auth_key_id AND k.user_id = u.id WHERE u.name = 'hsa' AND n.node_key = 'nodekey:late' "
                            "AND k.prefix = 'latekeyprefix' AND n.cluster_id = 4"),
            "1");
  EXPECT_EQ(lab.Scalar("4", "SELECT count(*) FROM nodes WHERE hostname = 'hsa-dev-4'"), "0");
  EXPECT_EQ(lab.Scalar("4", "SELECT given_name FROM nodes WHERE hostname = 'hsa-dev-6'"), "from-target");
  EXPECT_EQ(lab.Scalar("4", "SELECT last_seen = '2031-01-01 00:00:00+00' FROM nodes WHERE hostname = 'hsa-dev-5'"), "t");
  EXPECT_EQ(lab.Scalar("4", "SELECT count(*) FROM nodes WHERE hostname LIKE 'hsc-%'"), "12");

  // Again: nothing left to apply, the conflict is still reported (never silently dropped).
  auto again = mover->CatchUp(ref);
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(again->Applied(), 0);
  EXPECT_EQ(again->conflicts.size(), 1u);
  // Retire refuses while a source change is unapplied; the operator resolves it (source wins here).
  auto refused = mover->Retire(ref, /*archive=*/false);
  EXPECT_EQ(refused.status().code(), ExitCode::kRefused) << refused.status().ToString();
  auto resolved = mover->CatchUp(ref, ConflictPolicy::kSourceWins);
  ASSERT_TRUE(resolved.ok()) << resolved.status().ToString();
  EXPECT_EQ(lab.Scalar("4", "SELECT given_name FROM nodes WHERE hostname = 'hsa-dev-6'"), "from-source");
  auto clean = mover->CatchUp(ref);
  ASSERT_TRUE(clean.ok());
  EXPECT_TRUE(clean->conflicts.empty());
  EXPECT_EQ(clean->Applied(), 0);
  // After the cut, verify reports the target's own write (hsa-dev-5) and never undoes anything.
  auto v = mover->Verify(ref);
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  EXPECT_TRUE(v->after_cut);
  ASSERT_EQ(v->target_writes.size(), 1u);
  EXPECT_EQ(v->target_writes[0].what, "changed on target");
  EXPECT_TRUE(v->late_writes.empty());
  // Retire goes through once everything is caught up.
  auto ret = mover->Retire(ref, false);
  ASSERT_TRUE(ret.ok()) << ret.status().ToString();
  EXPECT_EQ(lab.Scalar("3", "SELECT count(*) FROM users WHERE name = 'hsa'"), "0");
  EXPECT_EQ(lab.Scalar("3", "SELECT count(*) FROM nodes"), "5");
}

TEST(CatchUpTest, PreAuthKeyConflictIsReportedWithoutItsCredentials) {
  Lab lab = SplitLab("catchup_secret", 4);
  auto mover = OpenMover(lab);
  MoveRef ref{"m-catchup-secret", "hsa", "3", "4"};
  ASSERT_TRUE(mover->Copy(ref).ok());
  const std::string pick = "SELECT min(k.id) FROM pre_auth_keys k JOIN users u ON u.id = k.user_id WHERE u.name = 'hsa'";
  const std::string sid = lab.Scalar("3", pick), tid = lab.Scalar("4", pick);
  const std::string hash_hex = lab.Scalar("4", "SELECT encode(hash, 'hex') FROM pre_auth_keys WHERE id = " + tid);
  const std::string prefix = lab.Scalar("4", "SELECT prefix FROM pre_auth_keys WHERE id = " + tid);
  ASSERT_EQ(hash_hex.size(), 64u);
  // Both sides change the same key row: different legacy plaintext keys, plus a plain column each.
  lab.Exec("3", "UPDATE pre_auth_keys SET key = 'plaintext-source-key-7c1e', used = false WHERE id = " + sid);
  lab.Exec("4", "UPDATE pre_auth_keys SET key = 'plaintext-target-key-93ad', expiration = now() + interval '1 day' "
                "WHERE id = " + tid);

  auto cu = mover->CatchUp(ref);
  ASSERT_TRUE(cu.ok()) << cu.status().ToString();
  ASSERT_EQ(cu->conflicts.size(), 1u);
  const CatchUpConflict& c = cu->conflicts[0];
  EXPECT_EQ(c.table, "pre_auth_keys");
  EXPECT_EQ(std::to_string(c.target_id), tid);
  EXPECT_EQ(c.what, "changed on both sides");
  EXPECT_EQ(c.differing_columns, (std::vector<std::string>{"expiration", "key", "used"}));
  EXPECT_EQ(c.source_version["key"], "<secret, differs>");
  EXPECT_EQ(c.target_version["key"], "<secret, differs>");
  EXPECT_EQ(c.source_version["hash"], "<secret, same>");
  EXPECT_EQ(c.target_version["hash"], "<secret, same>");
  EXPECT_EQ(c.source_version["used"], false);      // plain columns stay readable
  EXPECT_EQ(c.target_version["prefix"], prefix);
  const std::string out = cu->ToJson().dump();
  for (const std::string& secret : {std::string("plaintext-source-key-7c1e"), std::string("plaintext-target-key-93ad"),
                                    hash_hex}) {
    EXPECT_EQ(out.find(secret), std::string::npos) << secret << " leaked: " << out;
  }
  // The target keeps its version (report policy): nothing was applied.
  EXPECT_EQ(lab.Scalar("4", "SELECT key FROM pre_auth_keys WHERE id = " + tid), "plaintext-target-key-93ad");
}

TEST(CatchUpTest, RowLockedByAnotherTransactionFailsAfterTheLockTimeoutNotForever) {
  Lab lab = SplitLab("catchup_locktimeout", 4);
  lab.config.timeouts.db_lock_ms = 300;
  auto mover = OpenMover(lab);
  MoveRef ref{"m-catchup-lock", "hsa", "3", "4"};
  ASSERT_TRUE(mover->Copy(ref).ok());
  lab.Exec("3", "UPDATE nodes SET last_seen = '2030-01-01 00:00:00+00' WHERE hostname = 'hsa-dev-1'");
  // A long transaction on the target (headscale, an operator's psql) holds the row catch-up must lock.
  auto holder = lab.Connect("4");
  ASSERT_TRUE(holder->ExecScript("BEGIN; SELECT * FROM nodes WHERE hostname = 'hsa-dev-1' FOR UPDATE").ok());
  // Released after 20 s: without a lock timeout the catch-up would wait for it and then succeed.
  std::atomic<bool> returned{false};
  std::thread release([&] {
    for (int i = 0; i < 200 && !returned; ++i) usleep(100 * 1000);
    (void)holder->ExecScript("ROLLBACK");
  });
  auto cu = mover->CatchUp(ref);
  returned = true;
  ASSERT_FALSE(cu.ok()) << "catch-up waited for the row lock instead of giving up after timeouts.db_lock_ms";
  EXPECT_EQ(cu.status().code(), ExitCode::kFailed);
  EXPECT_NE(cu.status().message().find("lock timeout"), std::string::npos) << cu.status().ToString();
  EXPECT_NE(cu.status().hint().find("timeouts.db_lock_ms"), std::string::npos) << cu.status().ToString();
  release.join();
  EXPECT_EQ(lab.Scalar("4", "SELECT last_seen = '2030-01-01 00:00:00+00' FROM nodes WHERE hostname = 'hsa-dev-1'"), "f")
      << "a failed catch-up changed the target";
  // Once the other transaction is gone, the same catch-up goes through.
  auto again = mover->CatchUp(ref);
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(again->Applied(), 1);
}

TEST(CatchUpTest, SharedLayoutMovesRowsWrittenOnTheSourceClusterAfterTheMove) {
  Lab lab = MakeLab("catchup_shared", {}, {Tenant("hsa", "3", 5, 0), Tenant("hsc", "4", 3, 100)});
  auto mover = OpenMover(lab);
  MoveRef ref{"m-catchup-shared", "hsa", "3", "4"};
  ASSERT_TRUE(mover->Copy(ref).ok());
  // The old instance registers a device for hsa on cluster 3 during the cut.
  lab.Exec("3", "INSERT INTO nodes (cluster_id, node_key, machine_key, ipv4, hostname, given_name, user_id) "
                "SELECT 3, 'nodekey:late', 'mkey:late', '100.64.0.99', 'late', 'late', id FROM users WHERE name = 'hsa'");
  auto v = mover->Verify(ref);
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  EXPECT_EQ(v->late_writes.size(), 1u);
  auto cu = mover->CatchUp(ref);
  ASSERT_TRUE(cu.ok()) << cu.status().ToString();
  EXPECT_EQ(cu->tables[2].inserted, 1);
  EXPECT_EQ(lab.Scalar("3", "SELECT cluster_id FROM nodes WHERE node_key = 'nodekey:late'"), "4");
  // Rollback takes the late device back too.
  ASSERT_TRUE(mover->Rollback(ref).ok());
  EXPECT_EQ(lab.Scalar("3", "SELECT count(*) FROM nodes WHERE cluster_id = 3"), "6");
}

TEST(RollbackTest, SplitRollbackRefusesToLoseTargetWritesUnlessTold) {
  Lab lab = SplitLab("rollback_guard");
  auto before = lab.AllChecksums();
  auto mover = OpenMover(lab);
  MoveRef ref{"m-rb", "hsa", "3", "4"};
  ASSERT_TRUE(mover->Copy(ref).ok());
  lab.Exec("4", "UPDATE nodes SET last_seen = now() WHERE hostname = 'hsa-dev-0'");
  auto rb = mover->Rollback(ref);
  EXPECT_EQ(rb.status().code(), ExitCode::kNeedsOperator) << rb.status().ToString();
  RollbackOptions force;
  force.discard_target_changes = true;
  auto rb2 = mover->Rollback(ref, force);
  ASSERT_TRUE(rb2.ok()) << rb2.status().ToString();
  EXPECT_EQ(rb2->discarded_target_changes, 1);
  EXPECT_EQ(lab.AllChecksums(), before);
}

class DroppedConnectionTest : public ::testing::TestWithParam<const char*> {};  // which backend dies

TEST_P(DroppedConnectionTest, MidCopyLeavesTheTargetUnchangedAndRerunConverges) {
  const std::string side = GetParam();
  Lab lab = SplitLab(std::string("dropped_") + side, 3000);
  auto before = lab.AllChecksums();
  auto mover = OpenMover(lab);
  MoveRef ref{"m-dropped", "hsa", "3", "4"};
  CopyOptions opts;
  opts.progress_every_rows = 250;
  bool killed = false;
  opts.on_progress = [&](const CopyProgress& p) -> Status {
    if (killed || p.table != "nodes" || p.table_done || p.rows < 1000) return Status::Ok();
    // Mid-COPY of nodes: rows are already inside the target's transaction. Kill a backend from outside.
    int pid = side == std::string("target") ? p.target_backend_pid : p.source_backend_pid;
    lab.Exec(side == std::string("target") ? "4" : "3", "SELECT pg_terminate_backend(" + std::to_string(pid) + ")");
    killed = true;
    usleep(100000);
    return Status::Ok();
  };
  auto copy = mover->Copy(ref, opts);
  ASSERT_TRUE(killed);
  ASSERT_FALSE(copy.ok());
  EXPECT_EQ(copy.status().code(), ExitCode::kFailed);
  EXPECT_NE(copy.status().message().find("nothing was committed"), std::string::npos) << copy.status().message();
  EXPECT_EQ(lab.AllChecksums(), before) << "a dropped connection left rows behind";
  EXPECT_EQ(lab.Scalar("4", "SELECT count(*) FROM headshift_copies"), "0");
  // The same migration, re-run (resume), reconnects and completes.
  auto retry = mover->Copy(ref);
  ASSERT_TRUE(retry.ok()) << retry.status().ToString();
  EXPECT_FALSE(retry->resumed);
  EXPECT_EQ(retry->tables[2].rows, 3000);
  auto v = mover->Verify(ref);
  EXPECT_TRUE(v.ok()) << v.status().ToString();
}

INSTANTIATE_TEST_SUITE_P(Sides, DroppedConnectionTest, ::testing::Values("target", "source"),
                         [](const auto& i) { return std::string(i.param); });

}  // namespace
}  // namespace headshift::migrate
