// End-to-end at 5,000 devices per tenant (issue 21): the report and the journal of a move stay correct
// when the tenant and the target are big. hsa (5,000 devices) moves from cluster 3 to cluster 4, whose
// restart drops hsb's 3,500 devices (the lab's HAProxy holds at most 9,000 clients). On the sandbox lab (real
// PostgreSQL, HAProxy, namespaces, the stand-ins and a fleet of 8,500 clients) the report must count every
// row, every session reset, every device back and the restart's 3,500 other devices, with no straggler; the journal (`status <id>`) must
// hold the same counts; the fleet must see no rejection (no re-authentication). The stand-ins answer at
// once, so this checks headshift's own side at that size (listings, journal, waits), not headscale's.
#include <gtest/gtest.h>

#include "tests/e2e/playbooks/lab_fixture.h"

namespace headshift::testing {
namespace {

constexpr int kDevices = 5000;
constexpr int kOthers = 3500;

nlohmann::json StepDetails(const nlohmann::json& migration, const std::string& step) {
  nlohmann::json last;
  for (const auto& s : migration.value("steps", nlohmann::json::array())) {
    if (s.value("step", "") == step && s.contains("details")) last = s["details"];
  }
  return last;
}

TEST(ScaleE2E, FiveThousandDevicesPerTenantReportAndJournalStayCorrect) {
  sandbox::LabOptions o;
  o.name = "e2e-scale";
  o.tenants = {{"hsa", "3", kDevices}, {"hsb", "4", kOthers}};
  o.layout = DbLayout::kSplit;
  o.lookup = sandbox::LookupMode::kCached;
  o.reload_command = true;
  o.reload_drops_sessions = true;
  o.connected_timeout_ms = 600000;
  LabFixture lab(o);
  ASSERT_TRUE(lab.up());
  ASSERT_TRUE(lab.WaitAllConnected(600000));
  lab.ResetStats();

  auto r = lab.Headshift({"migrate", "hsa", "--to", "4", "--yes"});
  ASSERT_EQ(r.exit_code, 0) << r.json.dump(2).substr(0, 4000) << r.err;
  const nlohmann::json& j = r.json;
  EXPECT_EQ(j.value("state", ""), "complete");
  EXPECT_EQ(j["rows"].value("nodes", int64_t{0}), kDevices);
  EXPECT_EQ(j.value("sessions_reset", int64_t{0}), kDevices);
  EXPECT_EQ(j.value("online_before", int64_t{0}), kDevices);
  EXPECT_EQ(j.value("reconnected", int64_t{0}), kDevices);
  EXPECT_TRUE(j["stragglers"].empty()) << j["stragglers"].size() << " stragglers";
  EXPECT_EQ(j.value("reauth", int64_t{-1}), 0);
  const nlohmann::json& tr = j["target_restart"];
  ASSERT_TRUE(tr.is_object()) << j.dump(2).substr(0, 4000);
  EXPECT_TRUE(tr.value("restarted", false));
  EXPECT_EQ(tr.value("devices_reconnecting", int64_t{-1}), kOthers);
  EXPECT_EQ(tr.value("reconnected", int64_t{-1}), kOthers);
  EXPECT_TRUE(tr["stragglers"].empty()) << tr["stragglers"].size() << " stragglers";
  EXPECT_EQ(j.value("collateral", int64_t{-1}), kOthers);

  // The journal holds the same counts as the report.
  auto st = lab.Headshift({"status", j.value("id", "")});
  ASSERT_EQ(st.exit_code, 0) << st.err;
  ASSERT_EQ(st.json["migrations"].size(), 1u);
  const nlohmann::json& m = st.json["migrations"][0];
  EXPECT_EQ(m.value("state", ""), "complete");
  EXPECT_EQ(StepDetails(m, "preflight")["online_before"].size(), static_cast<size_t>(kDevices));
  EXPECT_EQ(StepDetails(m, "reset_sessions").value("reset", int64_t{0}), kDevices);
  nlohmann::json rc = StepDetails(m, "reconnected");
  EXPECT_EQ(rc.value("reconnected", int64_t{0}), kDevices) << rc.dump().substr(0, 2000);
  EXPECT_TRUE(rc["stragglers"].empty());

  // What the fleet saw: hsa on cluster 4 with no rejection; hsb reconnected with its keys.
  ASSERT_TRUE(lab.WaitTenantOn("hsa", "4", 300000)) << lab.LabState().dump(2).substr(0, 4000);
  ASSERT_TRUE(lab.WaitTenantOn("hsb", "4", 300000)) << lab.LabState().dump(2).substr(0, 4000);
  for (const char* t : {"hsa", "hsb"}) EXPECT_EQ(lab.Tenant(t).value("rejections", int64_t{-1}), 0) << t;
  EXPECT_EQ(lab.RouteOf("hsa"), "4");
}

}  // namespace
}  // namespace headshift::testing
