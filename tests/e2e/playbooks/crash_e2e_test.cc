// Crash safety: the process is killed (SIGKILL) right after each step of a migration in turn; then
// `resume` must complete it, and — for a second crash at the same step — `rollback` must restore
// the tenant exactly (DB rows, route, devices on the source), with zero rejections throughout.
#include <gtest/gtest.h>

#include "playbooks/migration_report.h"
#include "tests/e2e/playbooks/lab_fixture.h"

namespace headshift::testing {
namespace {

class CrashE2E : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    sandbox::LabOptions o;
    o.name = "e2e-crash";
    o.devices = 12;
    o.tenant_count = 2;
    // Control planes write last_seen on disconnect after this grace; keep it beyond the test so
    // row checksums compare exactly.
    o.disconnect_grace_ms = 3600 * 1000;
    lab_ = new LabFixture(o);
  }
  static void TearDownTestSuite() {
    delete lab_;
    lab_ = nullptr;
  }
  // The migration id of the newest migration of hsa.
  std::string NewestId() {
    auto st = lab_->Headshift({"status", "hsa"});
    if (!st.json.contains("migrations") || st.json["migrations"].empty()) return "";
    return st.json["migrations"][0].value("id", "");
  }
  std::string Where() { return lab_->RouteOf("hsa"); }

  static LabFixture* lab_;
};
LabFixture* CrashE2E::lab_ = nullptr;

TEST_F(CrashE2E, EveryCrashPointResumesAndRollsBack) {
  ASSERT_TRUE(lab_->up());
  ASSERT_TRUE(lab_->WaitAllConnected());
  for (const std::string& step : MigrationSteps()) {
    SCOPED_TRACE("crash after " + step);
    std::string from = Where();
    std::string to = from == "3" ? "4" : "3";
    lab_->ResetStats();

    // 1. crash, then resume → complete on `to`.
    auto crashed = lab_->Headshift({"migrate", "hsa", "--to", to, "--yes"}, {{"HEADSHIFT_CRASH_AFTER", step}});
    ASSERT_EQ(crashed.exit_code, 128 + 9) << crashed.err;
    std::string id = NewestId();
    ASSERT_FALSE(id.empty());
    auto resumed = lab_->Headshift({"resume", id});
    ASSERT_EQ(resumed.exit_code, 0) << resumed.json.dump(2) << resumed.err;
    EXPECT_EQ(resumed.json.value("state", ""), "complete");
    ASSERT_TRUE(lab_->WaitTenantOn("hsa", to, 30000)) << lab_->LabState().dump(2);
    EXPECT_EQ(Where(), to);
    EXPECT_EQ(lab_->Tenant("hsa").value("rejections", -1), 0);
    EXPECT_EQ(lab_->Tenant("hsb").value("disconnects", -1), 0);
    // Resuming a finished migration is a no-op.
    EXPECT_EQ(lab_->Headshift({"resume", id}).exit_code, 0);

    // 2. crash at the same step going back, then roll back → exactly as before.
    if (step == "complete") {
      auto again = lab_->Headshift({"migrate", "hsa", "--to", from, "--yes"}, {{"HEADSHIFT_CRASH_AFTER", step}});
      ASSERT_EQ(again.exit_code, 128 + 9);
      auto rb = lab_->Headshift({"rollback", NewestId()});
      EXPECT_EQ(rb.exit_code, 3) << "a complete migration cannot be rolled back: " << rb.json.dump(2);
      ASSERT_TRUE(lab_->WaitTenantOn("hsa", from, 30000));
      continue;
    }
    std::string before = lab_->TenantChecksum("hsa");
    lab_->ResetStats();
    auto crashed2 = lab_->Headshift({"migrate", "hsa", "--to", from, "--yes"}, {{"HEADSHIFT_CRASH_AFTER", step}});
    ASSERT_EQ(crashed2.exit_code, 128 + 9) << crashed2.err;
    std::string id2 = NewestId();
    ASSERT_NE(id2, id);
    auto rb = lab_->Headshift({"rollback", id2});
    ASSERT_EQ(rb.exit_code, 0) << rb.json.dump(2) << rb.err;
    EXPECT_EQ(rb.json.value("state", ""), "rolled_back");
    ASSERT_TRUE(lab_->WaitTenantOn("hsa", to, 30000)) << lab_->LabState().dump(2);
    EXPECT_EQ(Where(), to);
    EXPECT_EQ(lab_->TenantChecksum("hsa"), before);
    EXPECT_EQ(lab_->Tenant("hsa").value("rejections", -1), 0);
    EXPECT_EQ(lab_->Tenant("hsb").value("disconnects", -1), 0);
    // Rolling back twice converges.
    EXPECT_EQ(lab_->Headshift({"rollback", id2}).exit_code, 0);
  }
}

}  // namespace
}  // namespace headshift::testing
