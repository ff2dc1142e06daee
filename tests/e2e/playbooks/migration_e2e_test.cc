// End-to-end: `headshift migrate` on the sandbox lab — real PostgreSQL, real HAProxy, network
// namespaces, the headscale stand-ins and a client fleet. Asserts what operators care about: the
// tenant's devices end up on the target with zero rejections (no re-authentication), other tenants'
// devices are never disconnected, and refusals change nothing.
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <fstream>

#include "playbooks/migration_report.h"
#include "tests/e2e/playbooks/lab_fixture.h"

namespace headshift::testing {
namespace {

sandbox::LabOptions Small(const std::string& name) {
  sandbox::LabOptions o;
  o.name = name;
  o.devices = 20;
  o.tenant_count = 3;  // hsa on 3, the others spread
  return o;
}

int64_t Get(const nlohmann::json& tenant, const char* key) { return tenant.value(key, int64_t{-1}); }

// The invariants of a good cut for `tenant`, checked after the migration reported done.
void ExpectCleanCut(LabFixture& lab, const std::string& tenant, const std::string& to,
                    const std::vector<std::string>& others) {
  ASSERT_TRUE(lab.WaitTenantOn(tenant, to, 30000)) << lab.LabState().dump(2);
  nlohmann::json t = lab.Tenant(tenant);
  EXPECT_EQ(Get(t, "rejections"), 0) << t.dump(2);
  EXPECT_EQ(t["connected_by_cluster"].value(to, int64_t{0}), Get(t, "clients")) << t.dump(2);
  for (const auto& o : others) {
    nlohmann::json ot = lab.Tenant(o);
    EXPECT_EQ(Get(ot, "disconnects"), 0) << o << ": " << ot.dump(2);
    EXPECT_EQ(Get(ot, "disconnected_clients"), 0) << o;
    EXPECT_EQ(Get(ot, "rejections"), 0) << o;
  }
  EXPECT_EQ(lab.RouteOf(tenant), to);
}

void ExpectMigrationJson(const nlohmann::json& j, const std::string& tenant, const std::string& from,
                         const std::string& to) {
  for (const char* k : {"id", "tenant", "from", "to", "state", "rows", "sessions_reset", "collateral", "reconnected",
                        "reauth", "timings_ms"}) {
    EXPECT_TRUE(j.contains(k)) << "missing " << k << " in " << j.dump();
  }
  EXPECT_EQ(j.value("tenant", ""), tenant);
  EXPECT_EQ(j.value("from", ""), from);
  EXPECT_EQ(j.value("to", ""), to);
  EXPECT_EQ(j.value("state", ""), "complete") << j.dump(2);
  EXPECT_EQ(j.value("reauth", -1), 0);
  EXPECT_EQ(j.value("collateral", -1), 0);
  EXPECT_EQ(j["rows"].value("nodes", int64_t{0}), 20);
  EXPECT_EQ(j["rows"].value("users", int64_t{0}), 1);
}

class MigrationE2E : public ::testing::TestWithParam<DbLayout> {};

TEST_P(MigrationE2E, MovesTenantWithoutReauthOrCollateral) {
  auto o = Small(GetParam() == DbLayout::kShared ? "e2e-shared" : "e2e-split");
  o.layout = GetParam();
  LabFixture lab(o);
  ASSERT_TRUE(lab.up());
  ASSERT_TRUE(lab.WaitAllConnected());
  EXPECT_EQ(lab.RouteOf("hsa"), "3");
  lab.ResetStats();

  auto plan = lab.Headshift({"plan", "hsa", "--to", "4"});
  EXPECT_EQ(plan.exit_code, 0) << plan.json.dump(2) << plan.err;
  EXPECT_EQ(plan.json.value("sessions_selected", 0), 20) << plan.json.dump(2);
  EXPECT_EQ(lab.RouteOf("hsa"), "3");  // plan changed nothing

  // The sessions command selects a tenant by name (addresses from nodes.endpoints), read-only.
  auto ls = lab.Headshift({"sessions", "list", "--host", "edge", "--tenant", "hsa"});
  EXPECT_EQ(ls.exit_code, 0) << ls.json.dump(2) << ls.err;
  EXPECT_EQ(ls.json.value("selected", 0), 20) << ls.json.dump(2);
  EXPECT_EQ(lab.Headshift({"sessions", "list", "--host", "edge", "--tenant", "nosuch"}).exit_code, 2);

  auto r = lab.Headshift({"migrate", "hsa", "--to", "4", "--yes"});
  ASSERT_EQ(r.exit_code, 0) << r.json.dump(2) << r.err;
  ExpectMigrationJson(r.json, "hsa", "3", "4");
  EXPECT_EQ(r.json.value("sessions_reset", 0), 20) << r.json.dump(2);
  EXPECT_EQ(r.json.value("reconnected", 0), 20) << r.json.dump(2);
  ExpectCleanCut(lab, "hsa", "4", {"hsb", "hsc"});

  auto st = lab.Headshift({"status", r.json.value("id", "")});
  ASSERT_EQ(st.exit_code, 0);
  EXPECT_EQ(st.json["migrations"][0].value("state", ""), "complete");
}

INSTANTIATE_TEST_SUITE_P(Layouts, MigrationE2E, ::testing::Values(DbLayout::kShared, DbLayout::kSplit),
                         [](const auto& i) { return std::string(DbLayoutName(i.param)); });

TEST(MigrationE2ERefusals, CachedControlPlaneWithoutReloadIsRefusedAndNothingChanges) {
  auto o = Small("e2e-cached");
  o.lookup = sandbox::LookupMode::kCached;
  o.reload_command = false;
  LabFixture lab(o);
  ASSERT_TRUE(lab.up());
  ASSERT_TRUE(lab.WaitAllConnected());
  lab.ResetStats();
  std::string before = lab.TenantChecksum("hsa");
  auto r = lab.Headshift({"migrate", "hsa", "--to", "4", "--yes"});
  EXPECT_EQ(r.exit_code, 3) << r.json.dump(2) << r.err;
  EXPECT_NE(r.json["error"].value("message", "").find("caches nodes"), std::string::npos) << r.json.dump(2);
  EXPECT_EQ(lab.TenantChecksum("hsa"), before);
  EXPECT_EQ(lab.RouteOf("hsa"), "3");
  nlohmann::json t = lab.Tenant("hsa");
  EXPECT_EQ(Get(t, "disconnects"), 0);
  EXPECT_EQ(t["connected_by_cluster"].value("3", int64_t{0}), 20);
  auto st = lab.Headshift({"status", "hsa"});
  EXPECT_TRUE(st.json["migrations"].empty()) << "a refused migration writes no journal row";
}

TEST(MigrationE2ERefusals, CachedControlPlaneWithReloadCommandMigrates) {
  auto o = Small("e2e-reload");
  o.lookup = sandbox::LookupMode::kCached;
  o.reload_command = true;
  LabFixture lab(o);
  ASSERT_TRUE(lab.up());
  ASSERT_TRUE(lab.WaitAllConnected());
  lab.ResetStats();
  auto r = lab.Headshift({"migrate", "hsa", "--to", "4", "--yes"});
  ASSERT_EQ(r.exit_code, 0) << r.json.dump(2) << r.err;
  EXPECT_TRUE(r.json.value("reloaded_target", false));
  // The lab's SIGHUP reload keeps connections (reload_drops_sessions: false): reloaded, not restarted.
  EXPECT_TRUE(r.json["target_restart"].value("reloaded", false)) << r.json.dump(2);
  EXPECT_FALSE(r.json["target_restart"].value("restarted", true)) << r.json.dump(2);
  EXPECT_EQ(r.json["collateral_detail"].value("target_restart", -1), 0);
  ExpectCleanCut(lab, "hsa", "4", {"hsb", "hsc"});
}

// A reload command that fails and prints the cluster's API key (as a misbehaving script could): the
// migration rolls back (exit 1) and the journal keeps the failure, with the key masked.
TEST(MigrationE2ERefusals, FailingReloadCommandOutputIsJournaledRedacted) {
  auto o = Small("e2e-redact");
  o.lookup = sandbox::LookupMode::kCached;
  o.reload_command = true;
  LabFixture lab(o);
  ASSERT_TRUE(lab.up());
  ASSERT_TRUE(lab.WaitAllConnected());
  std::string key_file;
  ASSERT_TRUE(lab.EditCluster("4", [&](YAML::Node& c) {
    key_file = c["api_key_file"].as<std::string>();
    c["reload_command"] = std::vector<std::string>{"cat", key_file, "/nonexistent/headshift-e2e-redact"};
  }));
  ASSERT_FALSE(key_file.empty());
  std::ifstream kf(key_file);
  std::string api_key;
  std::getline(kf, api_key);
  ASSERT_GE(api_key.size(), 8u);

  auto r = lab.Headshift({"migrate", "hsa", "--to", "4", "--yes"});
  EXPECT_EQ(r.exit_code, 1) << r.json.dump(2) << r.err;
  EXPECT_EQ(lab.RouteOf("hsa"), "3");
  const std::string journal = lab.QueryOn("3", "SELECT string_agg(step || ' ' || state || ' ' || details::text, "
                                               "E'\\n') FROM headshift_journal");
  EXPECT_NE(journal.find("reload command of cluster 4 exited 1: ***"), std::string::npos) << journal;
  EXPECT_EQ(journal.find(api_key), std::string::npos) << "API key in the journal: " << journal;
  EXPECT_EQ((r.json.dump() + r.err).find(api_key), std::string::npos);
}

TEST(MigrationE2ERefusals, DifferentNoiseKeyIsRefused) {
  auto o = Small("e2e-noise");
  o.different_noise_keys = true;
  LabFixture lab(o);
  ASSERT_TRUE(lab.up());
  ASSERT_TRUE(lab.WaitAllConnected());
  std::string before = lab.TenantChecksum("hsa");
  auto r = lab.Headshift({"migrate", "hsa", "--to", "4", "--yes"});
  EXPECT_EQ(r.exit_code, 3) << r.json.dump(2);
  EXPECT_NE(r.json["error"].value("message", "").find("different Noise keys"), std::string::npos);
  EXPECT_EQ(lab.TenantChecksum("hsa"), before);
  EXPECT_EQ(lab.RouteOf("hsa"), "3");
}

TEST(MigrationE2ERefusals, BadInputIsExit2WithNothingChanged) {
  LabFixture lab(Small("e2e-bad"));
  ASSERT_TRUE(lab.up());
  std::string before = lab.TenantChecksum("hsa");
  EXPECT_EQ(lab.Headshift({"migrate", "nosuchtenant", "--to", "4", "--yes"}).exit_code, 2);
  EXPECT_EQ(lab.Headshift({"migrate", "hsa", "--to", "9", "--yes"}).exit_code, 2);
  auto same = lab.Headshift({"migrate", "hsa", "--to", "3", "--yes"});
  EXPECT_EQ(same.exit_code, 2);
  EXPECT_NE(same.json["error"].value("message", "").find("already on cluster 3"), std::string::npos);
  EXPECT_EQ(lab.Headshift({"migrate", "hsa", "--to", "4"}).exit_code, 2) << "no --yes and no TTY";
  EXPECT_EQ(lab.TenantChecksum("hsa"), before);
  EXPECT_EQ(lab.RouteOf("hsa"), "3");
}

TEST(MigrationE2EGuards, SharedNatAddressIsSparedAndReported) {
  auto o = Small("e2e-nat");
  o.shared_nat_share = 0.25;
  LabFixture lab(o);
  ASSERT_TRUE(lab.up());
  ASSERT_TRUE(lab.WaitAllConnected());
  lab.ResetStats();
  auto r = lab.Headshift({"migrate", "hsa", "--to", "4", "--yes"});
  ASSERT_EQ(r.exit_code, 0) << r.json.dump(2) << r.err;
  EXPECT_FALSE(r.json["shared_addresses"].empty()) << r.json.dump(2);
  EXPECT_EQ(r.json.value("collateral", -1), 0);
  EXPECT_LT(r.json.value("sessions_reset", 0), 20);  // the shared address's sessions were spared
  EXPECT_FALSE(r.json["spared"].empty()) << r.json.dump(2);
  EXPECT_TRUE(r.json["stragglers"].empty()) << "spared devices are not stragglers: " << r.json.dump(2);
  // No other tenant was touched, and every hsa client is served by exactly one cluster.
  for (const char* other : {"hsb", "hsc"}) {
    nlohmann::json t = lab.Tenant(other);
    EXPECT_EQ(Get(t, "disconnects"), 0) << other << t.dump(2);
  }
  nlohmann::json hsa = lab.Tenant("hsa");
  EXPECT_EQ(Get(hsa, "rejections"), 0);
  int64_t on3 = hsa["connected_by_cluster"].value("3", int64_t{0}), on4 = hsa["connected_by_cluster"].value("4", int64_t{0});
  EXPECT_EQ(on3 + on4, 20) << hsa.dump(2);
  EXPECT_EQ(on4, r.json.value("sessions_reset", 0)) << hsa.dump(2);
}

TEST(MigrationE2EGuards, BehindSourceNatOnlyTheTenantIsReset) {
  auto o = Small("e2e-lb");
  o.lb = true;
  LabFixture lab(o);
  ASSERT_TRUE(lab.up());
  ASSERT_TRUE(lab.WaitAllConnected());
  lab.ResetStats();
  auto r = lab.Headshift({"migrate", "hsa", "--to", "4", "--yes"});
  ASSERT_EQ(r.exit_code, 0) << r.json.dump(2) << r.err;
  EXPECT_EQ(r.json.value("sessions_reset", 0), 20);
  ExpectCleanCut(lab, "hsa", "4", {"hsb", "hsc"});
}

// A device registers on the target cluster with one of the tenant's tailnet IPs after the copy
// (here: while the migration is stopped right after its copy). Before the route flips, the
// orchestrator re-checks the copied rows against the target cluster, finds the clash, and rolls the
// migration back: nothing moved, nobody disconnected. Without the clash the same move completes.
// A pre-auth key row changed on both sides during the cut is a catch-up conflict: reported (table, ids,
// the columns that differ) in the output and the journal, but the legacy plaintext key and the bcrypt
// hash appear in neither.
TEST(MigrationE2EGuards, PreAuthKeyConflictNeverShowsTheKey) {
  auto o = Small("e2e-secret");
  o.layout = DbLayout::kSplit;
  LabFixture lab(o);
  ASSERT_TRUE(lab.up());
  ASSERT_TRUE(lab.WaitAllConnected());
  auto crashed = lab.Headshift({"migrate", "hsa", "--to", "4", "--yes"}, {{"HEADSHIFT_CRASH_AFTER", "reconnected"}});
  ASSERT_EQ(crashed.exit_code, 128 + 9) << crashed.err;
  auto st = lab.Headshift({"status", "hsa"});
  ASSERT_TRUE(st.json.contains("migrations") && !st.json["migrations"].empty()) << st.json.dump(2) << st.err;
  const std::string id = st.json["migrations"][0].value("id", "");

  const std::string prefix = lab.QueryOn("3", "SELECT min(k.prefix) FROM pre_auth_keys k JOIN users u ON "
                                              "u.id = k.user_id WHERE u.name = 'hsa'");
  ASSERT_EQ(prefix.size(), 12u) << prefix;
  const std::string hash_hex = lab.QueryOn("4", "SELECT encode(hash, 'hex') FROM pre_auth_keys WHERE prefix = '" +
                                                    prefix + "'");
  ASSERT_EQ(hash_hex.size(), 64u) << hash_hex;
  const std::vector<std::string> secrets = {"plainSourceKey0c7f31", "plainTargetKey5ab912", hash_hex};
  ASSERT_EQ(lab.ExecOn("3", "UPDATE pre_auth_keys SET key = '" + secrets[0] + "', used = false WHERE prefix = '" +
                                prefix + "'"), "");
  ASSERT_EQ(lab.ExecOn("4", "UPDATE pre_auth_keys SET key = '" + secrets[1] + "' WHERE prefix = '" + prefix + "'"),
            "");

  auto resumed = lab.Headshift({"resume", id});
  ASSERT_TRUE(resumed.json.is_object()) << resumed.json.dump() << resumed.err;
  const std::string out = resumed.json.dump() + resumed.err;
  nlohmann::json conflict;
  for (const auto& c : resumed.json.value("conflicts", nlohmann::json::array())) {
    if (c.is_object() && c.value("table", "") == "pre_auth_keys") conflict = c;
  }
  ASSERT_TRUE(conflict.is_object()) << "exit " << resumed.exit_code << ": " << resumed.json.dump(2) << resumed.err;
  EXPECT_EQ(conflict["differing_columns"], nlohmann::json::array({"key", "used"})) << conflict.dump();
  EXPECT_EQ(conflict["source_version"].value("key", ""), "<secret, differs>");
  EXPECT_EQ(conflict["target_version"].value("hash", ""), "<secret, same>");
  EXPECT_EQ(conflict["target_version"].value("prefix", ""), prefix);

  // Text output of the same command (run again: catch-up reports the conflict again) and of status.
  auto text = RunHeadshift({"--config", lab.config_path(), "resume", id});
  auto text_status = RunHeadshift({"--config", lab.config_path(), "status", id});
  EXPECT_NE(text.out.find("pre_auth_keys"), std::string::npos) << text.out << text.err;
  // The journal (split layout without a shared database: in the target's database).
  const std::string journal =
      lab.QueryOn("4", "SELECT string_agg(step || ' ' || state || ' ' || details::text, E'\\n') FROM headshift_journal "
                       "WHERE id = '" + id + "'");
  EXPECT_NE(journal.find("\"differing_columns\": [\"key\", \"used\"]"), std::string::npos) << journal;
  for (const auto& secret : secrets) {
    EXPECT_EQ(out.find(secret), std::string::npos) << secret << " in resume --json: " << out;
    EXPECT_EQ(text.out.find(secret), std::string::npos) << secret << " in resume: " << text.out;
    EXPECT_EQ(text.err.find(secret), std::string::npos) << secret << " in resume stderr: " << text.err;
    EXPECT_EQ(text_status.out.find(secret), std::string::npos) << secret << " in status: " << text_status.out;
    EXPECT_EQ(journal.find(secret), std::string::npos) << secret << " in the journal: " << journal;
  }
}

// The tenant lock's PostgreSQL sessions are terminated mid-migration (here by the target's reload
// command, right after it reloads the target): the migration notices before its next step and stops
// with exit 4 without switching the route or rolling back; `resume` then finishes it.
TEST(MigrationE2EGuards, LostTenantLockStopsBeforeTheNextStep) {
  auto o = Small("e2e-lostlock");
  o.lookup = sandbox::LookupMode::kCached;
  o.reload_command = true;
  LabFixture lab(o);
  ASSERT_TRUE(lab.up());
  ASSERT_TRUE(lab.WaitAllConnected());
  lab.ResetStats();
  const std::string dsn_file = YAML::LoadFile(lab.config_path())["database"]["dsn_file"].as<std::string>();
  ASSERT_TRUE(lab.EditCluster("4", [&](YAML::Node& c) {
    std::string reload;
    for (const auto& a : c["reload_command"]) reload += a.as<std::string>() + " ";
    c["reload_command"] = std::vector<std::string>{
        "/bin/sh", "-c",
        reload + "&& /usr/bin/psql -X -q -v ON_ERROR_STOP=1 \"$(cat " + dsn_file + ")\" -c \"SELECT "
        "pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name LIKE 'headshift:%'\""};
  }));
  auto r = lab.Headshift({"migrate", "hsa", "--to", "4", "--yes"});
  EXPECT_EQ(r.exit_code, 4) << r.json.dump(2) << r.err;
  const std::string msg = r.json.contains("error") ? r.json["error"].value("message", "") : "";
  EXPECT_NE(msg.find("lost the lock of tenant hsa before snapshot_sessions"), std::string::npos) << r.json.dump(2);
  EXPECT_EQ(lab.RouteOf("hsa"), "3");
  EXPECT_EQ(lab.Tenant("hsa").value("disconnects", -1), 0) << "sessions were reset without the lock";
  auto st = lab.Headshift({"status", "hsa"});
  ASSERT_TRUE(st.json.contains("migrations") && !st.json["migrations"].empty()) << st.json.dump(2);
  EXPECT_EQ(st.json["migrations"][0].value("state", ""), "needs_operator") << st.json.dump(2);
  const std::string id = st.json["migrations"][0].value("id", "");

  auto resumed = lab.Headshift({"resume", id});
  ASSERT_EQ(resumed.exit_code, 0) << resumed.json.dump(2) << resumed.err;
  ExpectCleanCut(lab, "hsa", "4", {"hsb", "hsc"});
}

TEST(MigrationE2ERefusals, CollisionRegisteredOnTheTargetAfterTheCopyRollsBack) {
  auto o = Small("e2e-clash");
  LabFixture lab(o);
  ASSERT_TRUE(lab.up());
  ASSERT_TRUE(lab.WaitAllConnected());
  lab.ResetStats();
  std::string before = lab.TenantChecksum("hsa", /*stable_only=*/true);

  auto crashed = lab.Headshift({"migrate", "hsa", "--to", "4", "--yes"}, {{"HEADSHIFT_CRASH_AFTER", "copy"}});
  ASSERT_EQ(crashed.exit_code, 128 + 9) << crashed.err;
  auto st = lab.Headshift({"status", "hsa"});
  ASSERT_FALSE(st.json["migrations"].empty()) << st.json.dump(2);
  std::string id = st.json["migrations"][0].value("id", "");
  // The intruder: a node of another tenant on cluster 4 with one of hsa's IPv4 addresses.
  ASSERT_EQ(lab.ExecOn("4",
                       "INSERT INTO nodes (cluster_id, machine_key, node_key, ipv4, hostname, given_name, user_id) "
                       "SELECT '4', 'mkey:intruder', 'nodekey:intruder', n.ipv4, 'intruder', 'intruder', "
                       "(SELECT id FROM users WHERE name = 'hsb' LIMIT 1) FROM nodes n JOIN users u ON u.id = n.user_id "
                       "WHERE u.name = 'hsa' ORDER BY n.id LIMIT 1"),
            "");

  auto resumed = lab.Headshift({"resume", id});
  EXPECT_EQ(resumed.exit_code, 1) << resumed.json.dump(2) << resumed.err;
  std::string msg = resumed.json.contains("error") ? resumed.json["error"].value("message", "") : "";
  EXPECT_NE(msg.find("ipv4"), std::string::npos) << resumed.json.dump(2);
  EXPECT_EQ(lab.RouteOf("hsa"), "3");
  EXPECT_EQ(lab.Tenant("hsa").value("disconnects", -1), 0) << "sessions were reset although the move was rolled back";
  EXPECT_EQ(lab.ExecOn("4", "DELETE FROM nodes WHERE node_key = 'nodekey:intruder'"), "");
  EXPECT_EQ(lab.TenantChecksum("hsa", /*stable_only=*/true), before);

  auto r = lab.Headshift({"migrate", "hsa", "--to", "4", "--yes"});
  ASSERT_EQ(r.exit_code, 0) << r.json.dump(2) << r.err;
  ExpectCleanCut(lab, "hsa", "4", {"hsb", "hsc"});
}

}  // namespace
}  // namespace headshift::testing
