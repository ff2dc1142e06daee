// End-to-end: adaptive pacing follows the target (issue 22). On the sandbox lab (real PostgreSQL,
// HAProxy, namespaces, the headscale stand-ins and a client fleet), cluster 5's stand-in is slowed on
// purpose (it serves at most 5 new control streams a second, the rest wait in line) while cluster 4's
// answers at once. hsa moves 3 -> 4 (paced by the API's `online`), hsb moves 3 -> 5 (paced by
// /debug/batcher): in the same test the slow target must get smaller waves than the fast one, every
// device of both tenants must be back on its target with no rejection — from the fleet clients' own
// records — and hsc, on cluster 4 throughout, must never be disconnected. Then `--reset-rate 0` and
// `--pacing fixed` report themselves as unpaced and fixed.
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <iostream>

#include "common/atomic_file.h"
#include "tests/e2e/playbooks/lab_fixture.h"

namespace headshift::testing {
namespace {

constexpr int kDevices = 120;

int64_t Get(const nlohmann::json& j, const char* key) { return j.value(key, int64_t{-1}); }

// The largest wave after the first (the first is `first` on every target, whatever it absorbs).
int64_t LargestLaterWave(const nlohmann::json& pacing) {
  int64_t m = 0;
  const auto& waves = pacing["waves"];
  for (size_t i = 1; i < waves.size(); ++i) m = std::max(m, waves[i].value("size", int64_t{0}));
  return m;
}

// The waves hand over every snapshotted socket exactly once.
void ExpectWavesCoverTheReset(const nlohmann::json& j) {
  const nlohmann::json& p = j["pacing"];
  int64_t handed = 0, sent = 0;
  for (const auto& w : p["waves"]) {
    handed += w.value("size", int64_t{0});
    sent += w.value("sent", int64_t{0});
    for (const char* k : {"wave", "size", "sent", "gone", "back", "ms", "absorb_per_s"}) {
      EXPECT_TRUE(w.contains(k)) << k << " missing in " << w.dump();
    }
  }
  EXPECT_EQ(handed, Get(j, "sessions_selected")) << p.dump(2);
  EXPECT_EQ(sent, Get(j, "sessions_reset")) << p.dump(2);
  EXPECT_EQ(Get(p, "devices"), kDevices) << p.dump(2);
  EXPECT_TRUE(p["absorb_per_s"].is_number()) << p.dump(2);
}

TEST(PacingE2E, SlowTargetGetsSmallerWavesAndEveryDeviceComesBack) {
  sandbox::LabOptions o;
  o.name = "e2e-pacing";
  o.clusters = {"3", "4", "5"};
  o.tenants = {{"hsa", "3", kDevices}, {"hsb", "3", kDevices}, {"hsc", "4", 30}};
  o.absorb_per_s = {{"5", 5}};
  LabFixture lab(o);
  ASSERT_TRUE(lab.up());
  ASSERT_TRUE(lab.WaitAllConnected());
  // Cluster 5 is read through its batcher (the stand-in answers /debug/batcher on its API listener);
  // cluster 4 through its API. Waves judged over 2 s windows, so a busy CI machine still keeps up with 4.
  ASSERT_TRUE(lab.EditCluster("5", [](YAML::Node& c) { c["debug_url"] = c["control_url"].as<std::string>(); }));
  {
    YAML::Node cfg = YAML::LoadFile(lab.config_path());
    cfg["sessions"]["waves"]["window_ms"] = 2000;
    YAML::Emitter out;
    out << cfg;
    ASSERT_TRUE(WriteFileAtomically(lab.config_path(), std::string(out.c_str()) + "\n", 0600).ok());
  }
  lab.ResetStats();

  auto fast = lab.Headshift({"migrate", "hsa", "--to", "4", "--yes"});
  ASSERT_EQ(fast.exit_code, 0) << fast.json.dump(2).substr(0, 4000) << fast.err;
  auto slow = lab.Headshift({"migrate", "hsb", "--to", "5", "--yes"});
  ASSERT_EQ(slow.exit_code, 0) << slow.json.dump(2).substr(0, 4000) << slow.err;

  const nlohmann::json& pf = fast.json["pacing"];
  const nlohmann::json& ps = slow.json["pacing"];
  std::cout << "fast target: " << pf.dump() << "\nslow target: " << ps.dump() << "\n";
  EXPECT_EQ(pf.value("mode", ""), "adaptive") << pf.dump(2);
  EXPECT_EQ(ps.value("mode", ""), "adaptive") << ps.dump(2);
  EXPECT_EQ(pf.value("signal", ""), "api") << pf.dump(2);
  EXPECT_EQ(ps.value("signal", ""), "batcher") << ps.dump(2);
  EXPECT_EQ(Get(pf, "cap_per_s"), 2000);
  ExpectWavesCoverTheReset(fast.json);
  ExpectWavesCoverTheReset(slow.json);
  // The waves follow the target: the slow one never grows as far as the fast one does.
  EXPECT_LT(LargestLaterWave(ps), LargestLaterWave(pf)) << "slow: " << ps.dump() << "\nfast: " << pf.dump();
  EXPECT_GT(ps["waves"].size(), pf["waves"].size()) << "slow: " << ps.dump() << "\nfast: " << pf.dump();

  // The journal holds the same pacing as the report.
  auto st = lab.Headshift({"status", slow.json.value("id", "")});
  ASSERT_EQ(st.exit_code, 0) << st.err;
  nlohmann::json journaled;
  for (const auto& s : st.json["migrations"][0]["steps"]) {
    if (s.value("step", "") == "reset_sessions") journaled = s["details"]["pacing"];
  }
  EXPECT_EQ(journaled, ps);

  // What the devices saw: every one back on its target, none asked to log in, each reset once; the
  // tenant on the fast target throughout was never disconnected.
  for (const auto& [tenant, to] : std::vector<std::pair<std::string, std::string>>{{"hsa", "4"}, {"hsb", "5"}}) {
    ASSERT_TRUE(lab.WaitTenantOn(tenant, to, 120000)) << lab.LabState().dump(2).substr(0, 4000);
    nlohmann::json t = lab.Tenant(tenant);
    EXPECT_EQ(Get(t, "rejections"), 0) << tenant << ": " << t.dump(2);
    EXPECT_EQ(t["connected_by_cluster"].value(to, int64_t{0}), kDevices) << tenant << ": " << t.dump(2);
    EXPECT_EQ(Get(t, "disconnected_clients"), kDevices) << tenant << ": " << t.dump(2);
    EXPECT_EQ(t["interruption_ms"].value("ongoing", int64_t{-1}), 0) << tenant << ": " << t.dump(2);
    EXPECT_EQ(lab.RouteOf(tenant), to);
  }
  nlohmann::json c = lab.Tenant("hsc");
  EXPECT_EQ(Get(c, "disconnects"), 0) << c.dump(2);
  EXPECT_EQ(Get(c, "rejections"), 0) << c.dump(2);

  // The other modes say what they did: --reset-rate 0 is unpaced (no waves, no observation), --pacing
  // fixed is the fixed rate.
  auto unpaced = lab.Headshift({"migrate", "hsc", "--to", "3", "--yes", "--reset-rate", "0"});
  ASSERT_EQ(unpaced.exit_code, 0) << unpaced.json.dump(2).substr(0, 4000) << unpaced.err;
  EXPECT_EQ(unpaced.json["pacing"].value("mode", ""), "unpaced") << unpaced.json["pacing"].dump();
  EXPECT_TRUE(unpaced.json["pacing"]["waves"].empty());
  EXPECT_TRUE(unpaced.json["pacing"]["signal"].is_null());
  auto fixed = lab.Headshift({"migrate", "hsa", "--to", "3", "--yes", "--pacing", "fixed", "--reset-rate", "500"});
  ASSERT_EQ(fixed.exit_code, 0) << fixed.json.dump(2).substr(0, 4000) << fixed.err;
  EXPECT_EQ(fixed.json["pacing"].value("mode", ""), "fixed") << fixed.json["pacing"].dump();
  EXPECT_EQ(Get(fixed.json["pacing"], "cap_per_s"), 500);
  ASSERT_TRUE(lab.WaitTenantOn("hsc", "3", 60000));
  ASSERT_TRUE(lab.WaitTenantOn("hsa", "3", 60000));
  EXPECT_EQ(Get(lab.Tenant("hsa"), "rejections"), 0);
}

}  // namespace
}  // namespace headshift::testing
