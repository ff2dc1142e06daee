// Journal rows, cluster cordons and the per-tenant advisory lock, against real PostgreSQL, in the shared
// database and in the target cluster's database (journal.location: target).
#include <gtest/gtest.h>

#include "common/redact.h"
#include "migrate/tenant_mover.h"
#include "tests/integration/migrate/migrate_lab.h"

namespace headshift::migrate {
namespace {

TEST(JournalTest, StepsAreRecordedAndReadBack) {
  Lab lab = MakeLab("journal_shared", {}, {Tenant("hsa", "3", 2, 0)});
  auto mover = TenantMover::Open(lab.config);
  ASSERT_TRUE(mover.ok());
  Journal& j = (*mover)->journal();
  auto m = j.Create("hsa", "3", "4", "", {{"requested_by", "test"}});
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_EQ(m->id.rfind("m-", 0), 0u);
  ASSERT_TRUE(j.StartStep(*m, "preflight").ok());
  ASSERT_TRUE(j.FinishStep(*m, "preflight", "done", {{"conflicts", 0}}).ok());
  ASSERT_TRUE(j.StartStep(*m, "copy").ok());
  ASSERT_TRUE(j.FinishStep(*m, "copy", "failed", {{"error", "connection lost"}}).ok());
  ASSERT_TRUE(j.StartStep(*m, "copy").ok());  // resumed
  ASSERT_TRUE(j.FinishStep(*m, "copy", "done", {{"rows", 5}}).ok());
  EXPECT_EQ(j.FinishStep(*m, "verify", "done").code(), ExitCode::kBadInput);
  ASSERT_TRUE(j.SetState(*m, "done").ok());

  auto got = j.Get(m->id);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(got->tenant, "hsa");
  EXPECT_EQ(got->from, "3");
  EXPECT_EQ(got->to, "4");
  EXPECT_EQ(got->state, "done");
  EXPECT_FALSE(got->finished_at.empty());
  EXPECT_EQ(got->details["requested_by"], "test");
  ASSERT_EQ(got->steps.size(), 2u);
  EXPECT_EQ(got->steps[0].step, "preflight");
  EXPECT_EQ(got->steps[0].details["conflicts"], 0);
  const JournalStep* copy = got->Step("copy");
  ASSERT_NE(copy, nullptr);
  EXPECT_EQ(copy->state, "done");
  EXPECT_EQ(copy->details["attempts"], 2);
  EXPECT_EQ(copy->details["rows"], 5);
  EXPECT_EQ(copy->details["error"], "connection lost");  // merged history

  auto m2 = j.Create("hsb", "4", "3");
  ASSERT_TRUE(m2.ok());
  auto dup = j.Create("hsa", "3", "4", m->id);
  EXPECT_EQ(dup.status().code(), ExitCode::kRefused);
  auto all = j.List();
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->size(), 2u);
  auto only = j.List(std::string("hsb"));
  ASSERT_TRUE(only.ok());
  ASSERT_EQ(only->size(), 1u);
  EXPECT_EQ((*only)[0].id, m2->id);
  EXPECT_EQ(j.Get("m-nope").status().code(), ExitCode::kBadInput);
}

TEST(JournalTest, RegisteredSecretsInStepDetailsAreStoredMasked) {
  Lab lab = MakeLab("journal_redact", {}, {Tenant("hsa", "3", 2, 0)});
  auto mover = TenantMover::Open(lab.config);
  ASSERT_TRUE(mover.ok());
  Journal& j = (*mover)->journal();
  // As if resolved from the config (an API key) and then echoed by a failing reload command. The
  // quote makes JSON escape it: the journal must mask the string, not its escaped form.
  const std::string secret = "hskey-api-Zq81\"wT7mK";
  RegisterSecret(secret);
  auto m = j.Create("hsa", "3", "4", "", {{"note", "created with " + secret}});
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  ASSERT_TRUE(j.StartStep(*m, "target_ready", {{"argv", {"reload", "--token", secret}}}).ok());
  ASSERT_TRUE(j.FinishStep(*m, "target_ready", "failed",
                           {{"error", "reload command of cluster 4 exited 7: token " + secret + " rejected"},
                            {"nested", {{"output", secret}}}})
                  .ok());
  ASSERT_TRUE(j.SetState(*m, "failed", {{"error", "target_ready: " + secret}}).ok());
  // The table itself, read without headshift (what `status` and any operator query see).
  const std::string rows = lab.Scalar("3", "SELECT string_agg(details::text, ' ') FROM headshift_journal WHERE id = '" +
                                                m->id + "'");
  EXPECT_NE(rows.find("reload command of cluster 4 exited 7: token *** rejected"), std::string::npos) << rows;
  EXPECT_NE(rows.find("\"--token\", \"***\""), std::string::npos) << rows;
  EXPECT_NE(rows.find("\"output\": \"***\""), std::string::npos) << rows;
  EXPECT_NE(rows.find("created with ***"), std::string::npos) << rows;
  EXPECT_NE(rows.find("target_ready: ***"), std::string::npos) << rows;
  EXPECT_EQ(rows.find("Zq81"), std::string::npos) << rows;
  EXPECT_EQ(rows.find("wT7mK"), std::string::npos) << rows;
  ClearSecretsForTest();
}

TEST(JournalTest, TargetLocationKeepsEachMigrationInItsTargetDatabase) {
  LabOptions o;
  o.split = true;
  Lab lab = MakeLab("journal_target", o, {Tenant("hsa", "3", 2, 0), Tenant("hsb", "4", 2, 100)});
  ASSERT_EQ(lab.config.journal.location, "target");
  auto mover = TenantMover::Open(lab.config);
  ASSERT_TRUE(mover.ok());
  Journal& j = (*mover)->journal();
  auto a = j.Create("hsa", "3", "4");
  auto b = j.Create("hsb", "4", "3");
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(lab.Scalar("4", "SELECT count(DISTINCT id) FROM headshift_journal"), "1");
  EXPECT_EQ(lab.Scalar("4", "SELECT DISTINCT tenant FROM headshift_journal"), "hsa");
  EXPECT_EQ(lab.Scalar("3", "SELECT DISTINCT tenant FROM headshift_journal"), "hsb");
  auto got = j.Get(b->id);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->tenant, "hsb");
  auto all = j.List();
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->size(), 2u);
}

TEST(CordonTest, CordonIsDurableAndPerCluster) {
  Lab lab = MakeLab("cordon", {}, {Tenant("hsa", "3", 1, 0)});
  {
    auto mover = TenantMover::Open(lab.config);
    ASSERT_TRUE(mover.ok());
    ClusterCordons& c = (*mover)->cordons();
    auto before = c.IsCordoned("3");
    ASSERT_TRUE(before.ok());
    EXPECT_FALSE(*before);
    ASSERT_TRUE(c.Cordon("3", "kernel upgrade").ok());
    ASSERT_TRUE(c.Cordon("3", "kernel upgrade").ok());  // idempotent
    EXPECT_EQ(c.Cordon("9", "x").code(), ExitCode::kBadInput);
  }
  auto mover = TenantMover::Open(lab.config);  // a new process sees it
  ASSERT_TRUE(mover.ok());
  auto all = (*mover)->cordons().All();
  ASSERT_TRUE(all.ok());
  EXPECT_TRUE((*all)["3"].cordoned);
  EXPECT_EQ((*all)["3"].reason, "kernel upgrade");
  EXPECT_FALSE((*all)["4"].cordoned);
  ASSERT_TRUE((*mover)->cordons().Uncordon("3").ok());
  auto after = (*mover)->cordons().IsCordoned("3");
  ASSERT_TRUE(after.ok());
  EXPECT_FALSE(*after);
}

class LockTest : public ::testing::TestWithParam<bool> {};  // param: split

TEST_P(LockTest, SecondMigrationOfTheSameTenantIsRefusedWithTheRunningId) {
  LabOptions o;
  o.split = GetParam();
  Lab lab = MakeLab(GetParam() ? "lock_split" : "lock_shared", o, {Tenant("hsa", "3", 2, 0), Tenant("hsb", "3", 2, 10)});
  auto m1 = TenantMover::Open(lab.config);
  auto m2 = TenantMover::Open(lab.config);  // another process, in effect
  ASSERT_TRUE(m1.ok() && m2.ok());
  auto lock = (*m1)->Lock("hsa", "3", "4", "m-first");
  ASSERT_TRUE(lock.ok()) << lock.status().ToString();
  EXPECT_TRUE((*lock)->Held());
  auto second = (*m2)->Lock("hsa", "3", "4", "m-second");
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), ExitCode::kRefused);
  EXPECT_NE(second.status().message().find("m-first"), std::string::npos) << second.status().message();
  // A different tenant is not blocked; neither is the same tenant towards another target... it is: the
  // source database holds the lock.
  auto other = (*m2)->Lock("hsb", "3", "4", "m-other");
  EXPECT_TRUE(other.ok()) << other.status().ToString();
  // Released when the first migration ends.
  (*lock)->Release();
  auto third = (*m2)->Lock("hsa", "3", "4", "m-third");
  EXPECT_TRUE(third.ok()) << third.status().ToString();
  // A crashed holder (its connections gone) releases the lock by itself.
  for (const std::string cluster : {"3", "4"}) {
    auto pid = lab.Scalar(cluster, "SELECT pid FROM pg_stat_activity WHERE application_name = 'headshift:m-third' "
                                   "AND datname = current_database() LIMIT 1");
    if (pid == "" || pid == "NULL") continue;  // shared: one database
    lab.Exec(cluster, "SELECT pg_terminate_backend(" + pid + ")");
    for (int i = 0; i < 50 && lab.Scalar(cluster, "SELECT count(*) FROM pg_stat_activity WHERE pid = " + pid) != "0"; ++i) {
      usleep(20000);
    }
  }
  EXPECT_FALSE((*third)->Held());
  auto fourth = (*m1)->Lock("hsa", "3", "4", "m-fourth");
  EXPECT_TRUE(fourth.ok()) << fourth.status().ToString();
}

INSTANTIATE_TEST_SUITE_P(Layouts, LockTest, ::testing::Values(false, true),
                         [](const auto& i) { return std::string(i.param ? "split" : "shared"); });

}  // namespace
}  // namespace headshift::migrate
