// End-to-end: what reloading the target control plane costs (issue 12). On headscale >= 0.27 the
// only reload of nodes is a restart, which drops every control connection the target holds; the
// lab's stand-ins act the same with LabOptions::reload_drops_sessions (SIGHUP closes every connection,
// every node starts offline). Asserts, on the real lab (PostgreSQL, HAProxy, stand-ins, fleet):
//   - plan counts the other tenants' devices online on the target (per tenant) and reports the risk;
//     an unreadable count is "unknown" (null), never 0;
//   - migrate --no-target-restart is refused (exit 3) and changes nothing, nobody disconnected;
//   - migrate restarts the target once: the other tenants' devices really reconnect (with their keys:
//     no rejection), the report counts them (target_restart, collateral, collateral_detail);
//   - devices a control plane still lists during their disconnect grace after moving away are not
//     counted;
//   - a target that already serves the keys is not reloaded: nothing restarted, the report says so.
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include "common/atomic_file.h"
#include "tests/e2e/playbooks/lab_fixture.h"
#include "tests/fixtures/cli_runner.h"

namespace headshift::testing {
namespace {

int64_t Get(const nlohmann::json& tenant, const char* key) { return tenant.value(key, int64_t{-1}); }

// hsa (moving) on cluster 3; three other tenants on the target, cluster 4.
sandbox::LabOptions RestartLab(const std::string& name, sandbox::LookupMode lookup) {
  sandbox::LabOptions o;
  o.name = name;
  o.tenants = {{"hsa", "3", 20}, {"hsb", "4", 12}, {"hsc", "4", 8}, {"hsd", "4", 5}};
  o.lookup = lookup;
  o.reload_command = true;
  o.reload_drops_sessions = true;
  return o;
}

nlohmann::json RiskOf(const nlohmann::json& report, const std::string& kind) {
  for (const auto& r : report.value("risks", nlohmann::json::array())) {
    if (r.is_object() && r.value("kind", "") == kind) return r;
  }
  return nlohmann::json();
}

const nlohmann::json kOthers = {{"hsb", 12}, {"hsc", 8}, {"hsd", 5}};

TEST(TargetRestartE2E, PlanCountsRefusalChangesNothingMigrateReportsTheReconnects) {
  LabFixture lab(RestartLab("e2e-restart", sandbox::LookupMode::kCached));
  ASSERT_TRUE(lab.up());
  ASSERT_TRUE(lab.WaitAllConnected());
  {
    auto cfg = YAML::LoadFile(lab.config_path());
    ASSERT_TRUE(cfg["clusters"][1]["reload_drops_sessions"].as<bool>());
  }

  // plan: the risk, structured and in words.
  auto plan = lab.Headshift({"plan", "hsa", "--to", "4"});
  ASSERT_EQ(plan.exit_code, 0) << plan.json.dump(2) << plan.err;
  nlohmann::json risk = RiskOf(plan.json, "target_restart");
  ASSERT_TRUE(risk.is_object()) << plan.json.dump(2);
  EXPECT_EQ(risk.value("cluster", ""), "4");
  EXPECT_EQ(risk.value("devices", -1), 25) << risk.dump(2);
  EXPECT_EQ(risk["tenants"], kOthers) << risk.dump(2);
  EXPECT_TRUE(risk.value("expected", false));
  EXPECT_NE(risk.value("message", "").find("reloading cluster 4 restarts it: 25 online devices of 3 other tenants "
                                           "(hsb, hsc, hsd) will reconnect"),
            std::string::npos)
      << risk.dump(2);
  EXPECT_TRUE(plan.json["target_restart"].value("would_restart", false)) << plan.json.dump(2);
  EXPECT_EQ(plan.json["target_restart"].value("devices_reconnecting", -1), 25);
  EXPECT_EQ(plan.json.value("collateral", -1), 25) << "a plan counts the restart it would cause";
  EXPECT_EQ(plan.json["collateral_detail"].value("target_restart", -1), 25);
  auto text = RunHeadshift({"--config", lab.config_path(), "plan", "hsa", "--to", "4"});
  EXPECT_EQ(text.exit_code, 0) << text.err;
  EXPECT_NE(text.out.find("risk: target_restart: reloading cluster 4 restarts it: 25 online devices of 3 other "
                          "tenants (hsb, hsc, hsd) will reconnect"),
            std::string::npos)
      << text.out;

  // The target's API unreadable (a wrong API key): the count is unknown, never 0.
  std::string key_file;
  ASSERT_TRUE(lab.EditCluster("4", [&](YAML::Node& c) { key_file = c["api_key_file"].as<std::string>(); }));
  const std::string wrong_key_file = lab.state_dir() + "/secrets/apikey-wrong";
  ASSERT_TRUE(WriteFileAtomically(wrong_key_file, "hskey-api-not-the-right-one\n", 0600).ok());
  ASSERT_TRUE(lab.EditCluster("4", [&](YAML::Node& c) { c["api_key_file"] = wrong_key_file; }));
  auto unknown = lab.Headshift({"plan", "hsa", "--to", "4"});
  nlohmann::json urisk = RiskOf(unknown.json, "target_restart");
  ASSERT_TRUE(urisk.is_object()) << unknown.json.dump(2) << unknown.err;
  EXPECT_TRUE(urisk["devices"].is_null()) << urisk.dump(2);
  EXPECT_NE(urisk.value("message", "").find("unknown number of online devices"), std::string::npos) << urisk.dump(2);
  EXPECT_NE(urisk.value("unknown_reason", "").find("401"), std::string::npos) << urisk.dump(2);
  EXPECT_TRUE(unknown.json["collateral"].is_null()) << unknown.json.dump(2);
  auto unknown_text = RunHeadshift({"--config", lab.config_path(), "plan", "hsa", "--to", "4"});
  EXPECT_NE(unknown_text.out.find("collateral (other tenants' devices disturbed): unknown"), std::string::npos)
      << unknown_text.out;
  ASSERT_TRUE(lab.EditCluster("4", [&](YAML::Node& c) { c["api_key_file"] = key_file; }));

  // --no-target-restart: refused before anything changes; nobody disconnected.
  lab.ResetStats();
  const std::string before = lab.TenantChecksum("hsa");
  auto refused = lab.Headshift({"migrate", "hsa", "--to", "4", "--yes", "--no-target-restart"});
  EXPECT_EQ(refused.exit_code, 3) << refused.json.dump(2) << refused.err;
  const std::string msg = refused.json.contains("error") ? refused.json["error"].value("message", "") : "";
  EXPECT_NE(msg.find("target_restart: reloading cluster 4 restarts it: 25 online devices"), std::string::npos) << msg;
  EXPECT_NE(msg.find("--no-target-restart refuses that"), std::string::npos) << msg;
  EXPECT_EQ(refused.json.value("state", ""), "refused");
  EXPECT_EQ(refused.json.value("collateral", -1), 0) << "a refused migration restarted nothing";
  EXPECT_EQ(lab.TenantChecksum("hsa"), before);
  EXPECT_EQ(lab.RouteOf("hsa"), "3");
  EXPECT_TRUE(lab.Headshift({"status", "hsa"}).json["migrations"].empty()) << "a refusal writes no journal row";
  for (const char* t : {"hsa", "hsb", "hsc", "hsd"}) EXPECT_EQ(Get(lab.Tenant(t), "disconnects"), 0) << t;

  // migrate: the target restarts once; its other tenants reconnect, and the report counts them.
  auto r = lab.Headshift({"migrate", "hsa", "--to", "4", "--yes"});
  ASSERT_EQ(r.exit_code, 0) << r.json.dump(2) << r.err;
  const nlohmann::json& tr = r.json["target_restart"];
  ASSERT_TRUE(tr.is_object()) << r.json.dump(2);
  EXPECT_FALSE(tr.value("planned", true));
  EXPECT_TRUE(tr.value("reload_needed", false)) << tr.dump(2);
  EXPECT_TRUE(tr.value("restarted", false)) << tr.dump(2);
  EXPECT_EQ(tr.value("devices_reconnecting", -1), 25) << tr.dump(2);
  EXPECT_EQ(tr["tenants"], kOthers) << tr.dump(2);
  EXPECT_EQ(tr.value("reconnected", -1), 25) << tr.dump(2);
  EXPECT_TRUE(tr["stragglers"].empty()) << tr.dump(2);
  EXPECT_TRUE(tr.contains("reconnect_ms"));
  EXPECT_TRUE(r.json.value("reloaded_target", false));
  EXPECT_EQ(r.json.value("sessions_collateral", -1), 0);
  EXPECT_EQ(r.json["collateral_detail"].value("sessions", -1), 0);
  EXPECT_EQ(r.json["collateral_detail"].value("target_restart", -1), 25);
  EXPECT_EQ(r.json.value("collateral", -1), 25) << r.json.dump(2);
  EXPECT_EQ(r.json.value("reauth", -1), 0);

  // Cluster 3 may still list hsa's devices as online (disconnect grace), but they live on 4 now: a
  // restart of 3 would not touch them, so they are not counted.
  auto back = lab.Headshift({"plan", "hsb", "--to", "3"});
  nlohmann::json brisk = RiskOf(back.json, "target_restart");
  ASSERT_TRUE(brisk.is_object()) << back.json.dump(2) << back.err;
  EXPECT_EQ(brisk.value("devices", -1), 0) << brisk.dump(2);
  EXPECT_TRUE(brisk["tenants"].empty()) << brisk.dump(2);

  // What the fleet saw: every device of the other tenants was disconnected once and is back on
  // cluster 4, with its key (no rejection); hsa moved cleanly.
  ASSERT_TRUE(lab.WaitTenantOn("hsa", "4", 30000)) << lab.LabState().dump(2);
  for (const auto& [t, n] : kOthers.items()) {
    ASSERT_TRUE(lab.WaitTenantOn(t, "4", 30000)) << lab.LabState().dump(2);
    nlohmann::json ot = lab.Tenant(t);
    EXPECT_GE(Get(ot, "disconnects"), n.get<int64_t>()) << t << ": " << ot.dump(2);
    EXPECT_EQ(Get(ot, "rejections"), 0) << t << ": " << ot.dump(2);
  }
  EXPECT_EQ(Get(lab.Tenant("hsa"), "rejections"), 0);
  EXPECT_EQ(lab.RouteOf("hsa"), "4");

  // The journal keeps it: status/resume read the same report back.
  auto resumed = lab.Headshift({"resume", r.json.value("id", "")});
  EXPECT_EQ(resumed.exit_code, 0) << resumed.json.dump(2);
  EXPECT_EQ(resumed.json["target_restart"].value("devices_reconnecting", -1), 25) << resumed.json.dump(2);
  EXPECT_EQ(resumed.json.value("collateral", -1), 25);

  auto human = RunHeadshift({"--config", lab.config_path(), "status", r.json.value("id", "")});
  EXPECT_EQ(human.exit_code, 0);
}

// A target that reads nodes per request serves the copied rows at once: its reload (a restart) is
// not needed, so nothing is restarted, --no-target-restart does not refuse, and nobody else moves.
TEST(TargetRestartE2E, TargetServingTheKeysIsNotRestarted) {
  LabFixture lab(RestartLab("e2e-norestart", sandbox::LookupMode::kPerRequest));
  ASSERT_TRUE(lab.up());
  ASSERT_TRUE(lab.WaitAllConnected());
  auto plan = lab.Headshift({"plan", "hsa", "--to", "4"});
  ASSERT_EQ(plan.exit_code, 0) << plan.json.dump(2) << plan.err;
  nlohmann::json risk = RiskOf(plan.json, "target_restart");
  ASSERT_TRUE(risk.is_object()) << plan.json.dump(2);
  EXPECT_FALSE(risk.value("expected", true)) << risk.dump(2);
  EXPECT_EQ(risk.value("devices", -1), 25) << risk.dump(2);
  EXPECT_NE(risk.value("message", "").find("runs only if it does not serve the copied node keys"), std::string::npos);
  EXPECT_EQ(plan.json.value("collateral", -1), 0);

  lab.ResetStats();
  auto r = lab.Headshift({"migrate", "hsa", "--to", "4", "--yes", "--no-target-restart"});
  ASSERT_EQ(r.exit_code, 0) << r.json.dump(2) << r.err;
  const nlohmann::json& tr = r.json["target_restart"];
  EXPECT_FALSE(tr.value("reload_needed", true)) << tr.dump(2);
  EXPECT_FALSE(tr.value("reloaded", true));
  EXPECT_FALSE(tr.value("restarted", true));
  EXPECT_EQ(tr.value("devices_reconnecting", -1), 0);
  EXPECT_NE(tr.value("message", "").find("not reloaded, nothing restarted"), std::string::npos) << tr.dump(2);
  EXPECT_FALSE(r.json.value("reloaded_target", true));
  EXPECT_EQ(r.json.value("collateral", -1), 0);
  ASSERT_TRUE(lab.WaitTenantOn("hsa", "4", 30000)) << lab.LabState().dump(2);
  for (const char* t : {"hsb", "hsc", "hsd"}) {
    EXPECT_EQ(Get(lab.Tenant(t), "disconnects"), 0) << t << ": " << lab.Tenant(t).dump(2);
  }
  auto text = RunHeadshift({"--config", lab.config_path(), "status", "hsa"});
  EXPECT_EQ(text.exit_code, 0);
}

}  // namespace
}  // namespace headshift::testing
