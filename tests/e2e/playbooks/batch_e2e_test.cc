// End-to-end: one restart per target for a batch (issue 22). The lab's stand-ins cache nodes and their
// reload acts as a restart of headscale (every connection dropped, every node offline), so each move
// onto a cluster needs one. Asserted on the lab (PostgreSQL, HAProxy, stand-ins, client fleet), from
// the stand-ins themselves (GET /health: `reloads`, the restarts each one went through, and `dropped`)
// and from the devices' records (disconnects per tenant):
//   - the dry runs (drain --dry-run, plan T1 T2 --to C) show per target the restarts and the expected
//     time without control of its own devices: unknown before anything was measured, then from the
//     journaled restart's reconnected / reconnect_ms (naming it);
//   - a drain of four tenants onto two targets, whose first run is killed right after the first
//     tenant's policy step, continues on a rerun (the same migration, copied once) and restarts each
//     target exactly once: its own devices disconnected once each, the moved ones never rejected;
//   - a drain killed in the middle of its first cut continues on a rerun without restarting again;
//   - a device registered on the source after its tenant's copy (loaded by no restart) makes the batch
//     restart the target a second time after the cuts (reason late_devices), and is then served;
//   - multi-tenant migrate: bad input (unknown tenant among several, a tenant listed twice, a tenant
//     already on the target) refused with exit 2 before any change; then two tenants onto one
//     target with one restart.
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <cmath>
#include <set>

#include "common/http_client.h"
#include "tests/e2e/playbooks/lab_fixture.h"

namespace headshift::testing {
namespace {

int64_t Get(const nlohmann::json& j, const char* key) { return j.value(key, int64_t{-1}); }

// Four tenants on cluster 3 (drained), one of each target's own on 4 and 5.
sandbox::LabOptions BatchLab(const std::string& name) {
  sandbox::LabOptions o;
  o.name = name;
  o.clusters = {"3", "4", "5"};
  o.tenants = {{"hsa", "3", 10}, {"hsb", "3", 9}, {"hsc", "3", 6}, {"hsg", "3", 5}, {"hsd", "4", 5}, {"hse", "5", 4}};
  o.lookup = sandbox::LookupMode::kCached;
  o.reload_command = true;
  o.reload_drops_sessions = true;
  return o;
}

// The stand-in's own view of itself: GET /health of cluster `id`.
nlohmann::json Health(LabFixture& lab, const std::string& id) {
  YAML::Node cfg = YAML::LoadFile(lab.config_path());
  for (const auto& c : cfg["clusters"]) {
    if (c["id"].as<std::string>() != id) continue;
    HttpClient http;
    auto r = http.Get(c["control_url"].as<std::string>() + "/health", {});
    if (!r.ok()) return nlohmann::json{{"error", r.status().message()}};
    return nlohmann::json::parse(r->body, nullptr, false);
  }
  return nlohmann::json{{"error", "no cluster " + id}};
}

std::string ErrorOf(const LabFixture::Result& r) {
  return r.json.contains("error") ? r.json["error"].value("message", "") : "";
}

TEST(BatchE2E, DrainRestartsEachTargetOnceEvenAcrossACrash) {
  LabFixture lab(BatchLab("e2e-batch"));
  ASSERT_TRUE(lab.up());
  ASSERT_TRUE(lab.WaitAllConnected());
  for (const char* c : {"3", "4", "5"}) ASSERT_EQ(Get(Health(lab, c), "reloads"), 0) << c;

  // The plan: one restart per target, the target's own devices dropped, no rate measured yet.
  auto dry = lab.Headshift({"drain", "3", "--to", "4,5", "--dry-run"});
  ASSERT_EQ(dry.exit_code, 0) << dry.json.dump(2) << dry.err;
  ASSERT_EQ(dry.json["plan"].size(), 4u) << dry.json.dump(2);
  EXPECT_EQ(dry.json["target_restarts"], (nlohmann::json{{"4", 1}, {"5", 1}})) << dry.json.dump(2);
  const nlohmann::json& p4 = dry.json["target_restart_detail"]["4"];
  EXPECT_EQ(Get(p4, "devices_dropped"), 5) << p4.dump(2);
  EXPECT_EQ(Get(dry.json["target_restart_detail"]["5"], "devices_dropped"), 4);
  EXPECT_TRUE(p4["expected_control_downtime_s"].is_null()) << "nothing measured yet: unknown, " << p4.dump(2);
  EXPECT_TRUE(p4["absorb_per_s"].is_null());
  EXPECT_NE(p4.value("absorb_source", "").find("no absorb rate measured onto cluster 4"), std::string::npos) << p4.dump(2);
  std::map<std::string, std::string> target;  // tenant -> planned target
  for (const auto& m : dry.json["plan"]) target[m.value("tenant", "")] = m.value("to", "");
  for (const char* c : {"4", "5"}) {
    int n = 0;
    for (const auto& [t, to] : target) n += to == c;
    EXPECT_EQ(n, 2) << "two tenants onto each target: " << dry.json.dump(2);
  }
  EXPECT_EQ(lab.RouteOf("hsa"), "3") << "a dry run changes nothing";
  for (const char* c : {"3", "4", "5"}) EXPECT_EQ(Get(Health(lab, c), "reloads"), 0) << c;

  // First run killed right after the first tenant's policy step (its copy done, nothing restarted).
  lab.ResetStats();
  auto crashed = lab.Headshift({"drain", "3", "--to", "4,5"}, {{"HEADSHIFT_CRASH_AFTER", "policy"}});
  ASSERT_EQ(crashed.exit_code, 128 + 9) << crashed.json.dump(2) << crashed.err;
  auto journal = lab.Headshift({"status"});
  ASSERT_EQ(journal.json["migrations"].size(), 1u) << journal.json.dump(2);
  const std::string first_id = journal.json["migrations"][0].value("id", "");
  const std::string first_tenant = journal.json["migrations"][0].value("tenant", "");
  for (const char* c : {"3", "4", "5"}) EXPECT_EQ(Get(Health(lab, c), "reloads"), 0) << c;

  // The rerun adopts it (no second copy) and restarts each target once.
  auto r = lab.Headshift({"drain", "3", "--to", "4,5"});
  ASSERT_EQ(r.exit_code, 0) << r.json.dump(2) << r.err;
  target.clear();  // what the rerun planned (the adopted tenant to its recorded target)
  for (const auto& m : r.json["plan"]) target[m.value("tenant", "")] = m.value("to", "");
  ASSERT_EQ(target.size(), 4u) << r.json.dump(2);
  EXPECT_EQ(target[first_tenant], journal.json["migrations"][0].value("to", ""));
  EXPECT_EQ(r.json["completed"].size(), 4u) << r.json.dump(2);
  EXPECT_TRUE(r.json["paused"].empty());
  EXPECT_EQ(r.json["target_restarts"], (nlohmann::json{{"4", 1}, {"5", 1}})) << r.json.dump(2);
  bool adopted = false;
  for (const auto& c : r.json["completed"]) adopted |= c.value("id", "") == first_id;
  EXPECT_TRUE(adopted) << first_id << " not continued: " << r.json.dump(2);
  auto first = lab.Headshift({"status", first_id});
  ASSERT_EQ(first.json["migrations"].size(), 1u);
  for (const auto& s : first.json["migrations"][0]["steps"]) {
    if (s.value("step", "") == "copy") {
      EXPECT_LE(s["details"].value("attempts", 1), 1) << "copied twice: " << s.dump(2);
    }
  }
  EXPECT_EQ(first.json["migrations"][0].value("state", ""), "complete");

  // Each target's restart report: its own devices counted and back; the moved tenants not counted.
  for (const auto& [c, own, tenant] : {std::tuple{"4", 5, "hsd"}, std::tuple{"5", 4, "hse"}}) {
    const nlohmann::json& d = r.json["target_restart_detail"][c];
    ASSERT_EQ(d["reports"].size(), 1u) << d.dump(2);
    const nlohmann::json& rep = d["reports"][0];
    EXPECT_EQ(rep.value("reason", ""), "batch");
    EXPECT_TRUE(rep.value("restarted", false)) << rep.dump(2);
    EXPECT_EQ(Get(rep, "devices_reconnecting"), own) << rep.dump(2);
    EXPECT_EQ(rep["tenants"], (nlohmann::json{{tenant, own}})) << rep.dump(2);
    EXPECT_EQ(Get(rep, "reconnected"), own) << rep.dump(2);
    std::set<std::string> served, planned;
    for (const auto& t : rep["tenants_served"]) served.insert(t.get<std::string>());
    for (const auto& [t, to] : target) {
      if (to == c) planned.insert(t);
    }
    EXPECT_EQ(served, planned) << rep.dump(2);
    EXPECT_GE(planned.size(), 1u);
  }
  // Each moved tenant's own migration found its keys served: nothing reloaded per tenant.
  for (const auto& c : r.json["completed"]) {
    EXPECT_FALSE(c["target_restart"].value("reloaded", true)) << c.value("tenant", "") << ": " << c["target_restart"].dump(2);
    EXPECT_EQ(c.value("reauth", -1), 0);
  }

  // The stand-ins themselves: each target went through one restart, the drained cluster none.
  EXPECT_EQ(Get(Health(lab, "3"), "reloads"), 0);
  EXPECT_EQ(Get(Health(lab, "4"), "reloads"), 1) << Health(lab, "4").dump();
  EXPECT_EQ(Get(Health(lab, "5"), "reloads"), 1) << Health(lab, "5").dump();

  // The devices' records: the targets' own devices were disconnected once each, and came back; the
  // moved tenants' devices were never rejected and live on their target.
  for (const auto& [t, c, n] : {std::tuple{"hsd", "4", 5}, std::tuple{"hse", "5", 4}}) {
    ASSERT_TRUE(lab.WaitTenantOn(t, c, 30000)) << lab.LabState().dump(2);
    nlohmann::json s = lab.Tenant(t);
    EXPECT_EQ(Get(s, "disconnects"), n) << t << ": " << s.dump(2);
    EXPECT_EQ(Get(s, "disconnected_clients"), n) << t << ": " << s.dump(2);
    EXPECT_EQ(Get(s, "rejections"), 0) << t;
  }
  for (const auto& [t, to] : target) {
    EXPECT_EQ(lab.RouteOf(t), to) << t;
    EXPECT_TRUE(lab.WaitTenantOn(t, to, 30000)) << t << lab.LabState().dump(2);
    EXPECT_EQ(Get(lab.Tenant(t), "rejections"), 0) << t;
  }

  // The next plan onto 4 reads the rate the restart measured, and names it.
  const std::map<std::string, int64_t> devices{{"hsa", 10}, {"hsb", 9}, {"hsc", 6}, {"hsg", 5}};
  std::string other5;
  int64_t on4 = 5;  // hsd, and the tenants the drain moved onto 4
  for (const auto& [t, to] : target) {
    if (to == "5") other5 = t;
    else on4 += devices.at(t);
  }
  auto plan = lab.Headshift({"plan", "hse", other5, "--to", "4"});
  ASSERT_EQ(plan.exit_code, 0) << plan.json.dump(2) << plan.err;
  EXPECT_EQ(plan.json.value("operation", ""), "migrate");
  EXPECT_EQ(plan.json["target_restarts"], (nlohmann::json{{"4", 1}})) << plan.json.dump(2);
  const nlohmann::json& q = plan.json["target_restart_detail"]["4"];
  ASSERT_TRUE(q["absorb_per_s"].is_number()) << q.dump(2);
  EXPECT_NE(q.value("absorb_source", "").find("batch_restart of cluster 4"), std::string::npos) << q.dump(2);
  int64_t dropped = Get(q, "devices_dropped");
  EXPECT_EQ(dropped, on4) << q.dump(2);
  ASSERT_TRUE(q["expected_control_downtime_s"].is_number()) << q.dump(2);
  EXPECT_NEAR(q["expected_control_downtime_s"].get<double>(), dropped / q["absorb_per_s"].get<double>(),
              0.05 * dropped / q["absorb_per_s"].get<double>() + 0.1)
      << q.dump(2);
}

// Killed right after the first tenant's route flipped (the target restarted already, the other tenant
// paused at policy): the rerun continues both where they stopped and does not restart the target again.
TEST(BatchE2E, DrainKilledDuringACutContinuesWithoutASecondRestart) {
  sandbox::LabOptions o = BatchLab("e2e-batchcut");
  o.clusters = {"3", "4"};
  o.tenants = {{"hsa", "3", 6}, {"hsb", "3", 5}, {"hsd", "4", 4}};
  LabFixture lab(o);
  ASSERT_TRUE(lab.up());
  ASSERT_TRUE(lab.WaitAllConnected());
  lab.ResetStats();
  auto crashed = lab.Headshift({"drain", "3"}, {{"HEADSHIFT_CRASH_AFTER", "switch_route"}});
  ASSERT_EQ(crashed.exit_code, 128 + 9) << crashed.json.dump(2) << crashed.err;
  std::map<std::string, std::string> state;
  auto status = lab.Headshift({"status"});
  for (const auto& m : status.json["migrations"]) state[m.value("tenant", "")] = m.value("state", "");
  EXPECT_EQ(state, (std::map<std::string, std::string>{{"hsa", "running"}, {"hsb", "paused"}}))
      << status.json.dump(2) << status.err << crashed.err;
  EXPECT_EQ(Get(Health(lab, "4"), "reloads"), 1);

  auto r = lab.Headshift({"drain", "3"});
  ASSERT_EQ(r.exit_code, 0) << r.json.dump(2) << r.err;
  EXPECT_EQ(r.json["completed"].size(), 2u) << r.json.dump(2);
  EXPECT_EQ(r.json["target_restarts"], (nlohmann::json{{"4", 0}})) << "the keys were served already: " << r.json.dump(2);
  EXPECT_EQ(Get(Health(lab, "4"), "reloads"), 1) << Health(lab, "4").dump();
  for (const char* t : {"hsa", "hsb"}) {
    EXPECT_EQ(lab.RouteOf(t), "4") << t;
    EXPECT_TRUE(lab.WaitTenantOn(t, "4", 30000)) << t << lab.LabState().dump(2);
    EXPECT_EQ(Get(lab.Tenant(t), "rejections"), 0) << t;
  }
  ASSERT_TRUE(lab.WaitTenantOn("hsd", "4", 30000));
  EXPECT_EQ(Get(lab.Tenant("hsd"), "disconnects"), 4) << "disconnected once, by the one restart: " << lab.Tenant("hsd").dump(2);
}

// A device of hsa registers on cluster 3 after hsa's copy (the first run is killed right after hsa's
// policy step): the target's batch restart cannot have loaded it (catch-up copies it at hsa's cut), so
// the batch checks after the cuts and restarts the target once more, and says why.
TEST(BatchE2E, DeviceRegisteredAfterItsCopyGetsASecondRestart) {
  sandbox::LabOptions o = BatchLab("e2e-batchlate");
  // One database per node, as stock headscale (the layout that needs the restarts): a device the
  // source registers is in the source's database only, until catch-up copies it.
  o.layout = DbLayout::kSplit;
  o.clusters = {"3", "4"};
  o.tenants = {{"hsa", "3", 6}, {"hsb", "3", 5}, {"hsd", "4", 4}};
  LabFixture lab(o);
  ASSERT_TRUE(lab.up());
  ASSERT_TRUE(lab.WaitAllConnected());
  auto crashed = lab.Headshift({"drain", "3"}, {{"HEADSHIFT_CRASH_AFTER", "policy"}});
  ASSERT_EQ(crashed.exit_code, 128 + 9) << crashed.json.dump(2) << crashed.err;
  auto journal = lab.Headshift({"status"});
  ASSERT_EQ(journal.json["migrations"].size(), 1u) << journal.json.dump(2);
  ASSERT_EQ(journal.json["migrations"][0].value("tenant", ""), "hsa") << "largest first";
  // Written the way the source's headscale registers a device: a new row in cluster 3's database.
  const std::string cid = lab.QueryOn("3", "SELECT count(*) FROM information_schema.columns WHERE "
                                           "table_name = 'nodes' AND column_name = 'cluster_id'") == "1"
                              ? "cluster_id, "
                              : "";
  ASSERT_EQ(lab.ExecOn("3", "INSERT INTO nodes (" + cid +
                                "machine_key, node_key, disco_key, endpoints, host_info, ipv4, ipv6, hostname, "
                                "given_name, user_id, register_method, tags, auth_key_id, last_seen, expiry, "
                                "approved_routes, created_at, updated_at) SELECT " + cid +
                                "'mkey:late', 'nodekey:late', 'discokey:late', endpoints, host_info, '100.64.9.250', "
                                "'fd7a:115c:a1e0::9fa', 'late-device', 'late-device', user_id, register_method, tags, "
                                "auth_key_id, now(), NULL, approved_routes, now(), now() FROM nodes WHERE hostname = "
                                "'hsa-dev-0'"),
            "");

  auto r = lab.Headshift({"drain", "3"});
  ASSERT_EQ(r.exit_code, 0) << r.json.dump(2) << r.err;
  EXPECT_EQ(r.json["completed"].size(), 2u);
  EXPECT_EQ(r.json["target_restarts"], (nlohmann::json{{"4", 2}})) << r.json.dump(2);
  const nlohmann::json& reports = r.json["target_restart_detail"]["4"]["reports"];
  ASSERT_EQ(reports.size(), 2u) << reports.dump(2);
  EXPECT_EQ(reports[0].value("reason", ""), "batch");
  EXPECT_EQ(reports[1].value("reason", ""), "late_devices");
  EXPECT_TRUE(reports[1].value("restarted", false)) << reports.dump(2);
  EXPECT_EQ(Get(Health(lab, "4"), "reloads"), 2) << Health(lab, "4").dump();
  // The late device is served by cluster 4 now (its API lists it).
  EXPECT_EQ(lab.QueryOn("4", "SELECT count(*) FROM nodes WHERE node_key = 'nodekey:late'"), "1")
      << "catch-up copied the late row";
  ASSERT_TRUE(lab.WaitTenantOn("hsa", "4", 30000)) << lab.LabState().dump(2);
  EXPECT_EQ(Get(lab.Tenant("hsa"), "rejections"), 0);
}

TEST(BatchE2E, MultiTenantMigrateRefusesBadInputThenRestartsTheTargetOnce) {
  LabFixture lab(BatchLab("e2e-batchmig"));
  ASSERT_TRUE(lab.up());
  ASSERT_TRUE(lab.WaitAllConnected());
  const std::string before = lab.TenantChecksum("hsa");

  struct Bad {
    std::vector<std::string> args;
    std::string says;
  };
  for (const Bad& b : {Bad{{"migrate", "hsa", "nosuch", "--to", "4", "--yes"}, "unknown tenant 'nosuch'"},
                       Bad{{"migrate", "hsa", "hsb", "hsa", "--to", "4", "--yes"}, "'hsa' is listed more than once"},
                       Bad{{"migrate", "hsa", "hsd", "--to", "4", "--yes"}, "'hsd' is already on cluster 4"},
                       Bad{{"migrate", "hsa", "hsb", "--to", "9", "--yes"}, "unknown target cluster '9'"},
                       Bad{{"migrate", "hsa", "hsb", "--to", "4", "--yes", "--until", "copy"}, "--until applies to one"},
                       Bad{{"plan", "hsa", "nosuch", "--to", "4"}, "unknown tenant 'nosuch'"}}) {
    auto r = lab.Headshift(b.args);
    EXPECT_EQ(r.exit_code, 2) << b.says << ": " << r.json.dump(2) << r.err;
    EXPECT_NE(ErrorOf(r).find(b.says), std::string::npos) << ErrorOf(r);
  }
  EXPECT_EQ(lab.TenantChecksum("hsa"), before) << "bad input changed nothing";
  EXPECT_EQ(lab.RouteOf("hsa"), "3");
  EXPECT_TRUE(lab.Headshift({"status"}).json["migrations"].empty()) << "bad input writes no journal row";
  EXPECT_EQ(Get(Health(lab, "4"), "reloads"), 0);

  // Three tenants from two clusters onto 4: one restart; hsd (4's own) disconnected once.
  lab.ResetStats();
  auto r = lab.Headshift({"migrate", "hsa", "hsb", "hse", "--to", "4", "--yes"});
  ASSERT_EQ(r.exit_code, 0) << r.json.dump(2) << r.err;
  EXPECT_EQ(r.json.value("operation", ""), "migrate");
  EXPECT_EQ(r.json["completed"].size(), 3u);
  EXPECT_EQ(r.json["target_restarts"], (nlohmann::json{{"4", 1}})) << r.json.dump(2);
  EXPECT_EQ(Get(Health(lab, "4"), "reloads"), 1) << Health(lab, "4").dump();
  for (const char* t : {"hsa", "hsb", "hse"}) {
    EXPECT_EQ(lab.RouteOf(t), "4") << t;
    EXPECT_TRUE(lab.WaitTenantOn(t, "4", 30000)) << t;
    EXPECT_EQ(Get(lab.Tenant(t), "rejections"), 0) << t;
  }
  ASSERT_TRUE(lab.WaitTenantOn("hsd", "4", 30000));
  EXPECT_EQ(Get(lab.Tenant("hsd"), "disconnects"), 5) << lab.Tenant("hsd").dump(2);
  EXPECT_EQ(Get(lab.Tenant("hsc"), "disconnects"), 0) << "a tenant left out is not touched";

  // A single tenant stays a plain migration (its own report, not the batch's).
  auto one = lab.Headshift({"migrate", "hsc", "--to", "5", "--yes"});
  ASSERT_EQ(one.exit_code, 0) << one.json.dump(2) << one.err;
  EXPECT_EQ(one.json.value("tenant", ""), "hsc");
  EXPECT_TRUE(one.json["target_restart"].value("restarted", false)) << one.json.dump(2);
  EXPECT_FALSE(one.json.contains("target_restarts"));
}

}  // namespace
}  // namespace headshift::testing
