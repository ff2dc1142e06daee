// The headscale stand-in against a real PostgreSQL: /key, the Bearer-protected node API (parsed by
// headshift's own HeadscaleClient), stream acceptance scoped by cluster_id with node key AND machine
// key, rejections (unknown, wrong machine key, other cluster, expired, deleted), keep-alives,
// last_seen/endpoints written after the disconnect grace, per-request vs cached lookups + SIGHUP
// reload, both cluster_id column types, and a few hundred concurrent streams.
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <set>
#include <thread>

#include <nlohmann/json.hpp>

#include "common/atomic_file.h"
#include "common/http_client.h"
#include "common/pg.h"
#include "controlplane/connected_nodes.h"
#include "controlplane/headscale_client.h"
#include "sandbox/headscale_schema.h"
#include "sandbox/process.h"
#include "sandbox/seed.h"
#include "tests/fixtures/cli_runner.h"
#include "tests/fixtures/pg_server.h"
#include "tests/integration/sandbox/stream_probe.h"

namespace headshift::sandbox {
namespace {

using testing::StreamProbe;

const std::string kNoise = "mkey:" + std::string(64, 'a');
const std::string kApiKey = "standin-test-api-key-0123456789";

// A running stand-in process (direct child, killed in the destructor).
class Standin {
 public:
  Standin(const std::string& dsn, const std::string& cluster, const std::string& mode, int grace_ms = 200,
          const std::vector<std::string>& extra = {}) {
    static int n = 0;
    std::string tag = "standin" + std::to_string(getpid()) + "_" + std::to_string(n++);
    std::string dsn_file = headshift::testing::WriteTempFile(tag + ".dsn", dsn);
    std::string key_file = headshift::testing::WriteTempFile(tag + ".key", kApiKey);
    ready_ = headshift::testing::WriteTempFile(tag + ".ready", "");
    std::filesystem::remove(ready_);
    SpawnOptions o;
    o.argv = {HEADSCALE_STANDIN_BIN, "--cluster-id", cluster,  "--listen", "127.0.0.1:0", "--dsn-file", dsn_file,
              "--api-key-file", key_file, "--noise-key", kNoise, "--lookup", mode, "--keepalive-ms", "200",
              "--disconnect-grace-ms", std::to_string(grace_ms), "--ready-file", ready_};
    o.argv.insert(o.argv.end(), extra.begin(), extra.end());
    o.log_file = ready_ + ".log";
    o.detach = false;
    auto p = SpawnProcess(o);
    EXPECT_TRUE(p.ok()) << p.status().ToString();
    if (p.ok()) proc_ = *p;
    for (int i = 0; i < 500 && addr_.empty(); ++i) {
      auto text = ReadFile(ready_);
      if (text.ok()) {
        auto j = nlohmann::json::parse(*text, nullptr, false);
        if (!j.is_discarded()) addr_ = j["listen"][0].get<std::string>();
      }
      if (addr_.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    EXPECT_FALSE(addr_.empty()) << "stand-in did not become ready; log: " << ReadFile(o.log_file).value();
  }
  ~Standin() { StopProcess(proc_.pid, proc_.start_time, 2000); }
  const std::string& addr() const { return addr_; }
  std::string url() const { return "http://" + addr_; }
  pid_t pid() const { return proc_.pid; }
  nlohmann::json Health() const {
    HttpClient http;
    auto r = http.Get(url() + "/health", {});
    return r.ok() ? nlohmann::json::parse(r->body, nullptr, false) : nlohmann::json();
  }

 private:
  SpawnedProcess proc_;
  std::string ready_;
  std::string addr_;
};

class StandinTest : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override {
    text_ = GetParam();
    static int n = 0;
    dsn_ = headshift::testing::CreateTestDatabase(std::string("standin_") + (text_ ? "t" : "b") + std::to_string(n++));
    auto c = PgConn::Connect(dsn_);
    ASSERT_TRUE(c.ok());
    db_ = std::move(*c);
    ASSERT_TRUE(CreateHeadscaleSchema(*db_, {text_ ? ClusterIdType::kText : ClusterIdType::kBigint, true}).ok());
    SeedSpec spec;
    spec.cluster_id_is_text = text_;
    spec.tenants.push_back({"hsa", "3", 6, "198.18.0.1", 3, "", 0, 0, 1});
    spec.tenants.push_back({"hsb", "4", 4, "198.18.16.1", 2, "", 0, 0, 1});
    ASSERT_TRUE(SeedTenants(*db_, spec).ok());
    auto a = NodeCredentials(*db_, "hsa");
    auto b = NodeCredentials(*db_, "hsb");
    ASSERT_TRUE(a.ok() && b.ok());
    hsa_ = *a;
    hsb_ = *b;
  }
  std::string Scalar(const std::string& sql) {
    auto r = db_->Exec(sql);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() && r->rows() ? r->Get(0, 0) : "";
  }

  bool text_ = false;
  std::string dsn_;
  std::unique_ptr<PgConn> db_;
  std::vector<NodeCredential> hsa_, hsb_;
};

TEST_P(StandinTest, KeyAndNodeApiNeedBearer) {
  Standin s(dsn_, "3", "per-request");
  HeadscaleClient anon(s.url(), "", 2000);
  auto key = anon.NoiseKey();
  ASSERT_TRUE(key.ok()) << key.status().ToString();
  EXPECT_EQ(*key, kNoise);

  HttpClient http;
  auto noauth = http.Get(s.url() + "/api/v1/node?user=hsa", {});
  ASSERT_TRUE(noauth.ok());
  EXPECT_EQ(noauth->status, 401);
  HttpRequestOptions wrong;
  wrong.bearer_token = "not-the-key";
  EXPECT_EQ(http.Get(s.url() + "/api/v1/node?user=hsa", wrong)->status, 401);

  HeadscaleClient api(s.url(), kApiKey, 2000);
  auto nodes = api.ListNodes("hsa");
  ASSERT_TRUE(nodes.ok()) << nodes.status().ToString();
  ASSERT_EQ(nodes->size(), hsa_.size());
  for (size_t i = 0; i < hsa_.size(); ++i) {
    EXPECT_EQ((*nodes)[i].node_key, hsa_[i].node_key);
    EXPECT_EQ((*nodes)[i].machine_key, hsa_[i].machine_key);
    EXPECT_EQ((*nodes)[i].id, std::to_string(hsa_[i].id));
    EXPECT_EQ((*nodes)[i].user, "hsa");
    EXPECT_EQ((*nodes)[i].name, hsa_[i].given_name);
    EXPECT_FALSE((*nodes)[i].online);
    EXPECT_FALSE((*nodes)[i].last_seen.empty());
  }
  // hsb lives on cluster 4: cluster 3 does not list it.
  auto other = api.ListNodes("hsb");
  ASSERT_TRUE(other.ok());
  EXPECT_TRUE(other->empty());
  // Raw JSON shape: id is a string, ipAddresses, registerMethod enum.
  HttpRequestOptions ok;
  ok.bearer_token = kApiKey;
  auto raw = http.Get(s.url() + "/api/v1/node?user=hsa", ok);
  auto j = nlohmann::json::parse(raw->body);
  EXPECT_TRUE(j["nodes"][0]["id"].is_string());
  EXPECT_EQ(j["nodes"][0]["ipAddresses"].size(), 2u);
  EXPECT_EQ(j["nodes"][0]["registerMethod"], "REGISTER_METHOD_AUTH_KEY");
}

TEST_P(StandinTest, ServesOwnClusterNodesWithKeepAlivesAndRejectsOthers) {
  Standin s(dsn_, "3", "per-request");
  StreamProbe good;
  EXPECT_EQ(good.Upgrade(s.addr()), "HTTP/1.1 101 Switching Protocols");
  EXPECT_EQ(good.Map(hsa_[0].node_key, hsa_[0].machine_key), "OK 3 " + std::to_string(hsa_[0].id));
  std::string ka = good.ReadLine(2000);
  EXPECT_EQ(ka.rfind("KA 3 ", 0), 0u) << ka;

  HeadscaleClient api(s.url(), kApiKey, 2000);
  auto nodes = api.ListNodes("hsa");
  ASSERT_TRUE(nodes.ok());
  EXPECT_TRUE((*nodes)[0].online);
  EXPECT_FALSE((*nodes)[1].online);

  auto expect_rejected = [&](const std::string& nk, const std::string& mk, const std::string& what) {
    StreamProbe p;
    EXPECT_EQ(p.Upgrade(s.addr()), "HTTP/1.1 101 Switching Protocols") << what;
    EXPECT_EQ(p.Map(nk, mk), "ERR 404 node not found") << what;
    EXPECT_TRUE(p.ClosedByPeer(2000)) << what;
  };
  expect_rejected("nodekey:" + std::string(64, 'f'), hsa_[1].machine_key, "unknown node key");
  expect_rejected(hsa_[1].node_key, hsa_[2].machine_key, "machine key of another node");
  expect_rejected(hsb_[0].node_key, hsb_[0].machine_key, "node of cluster 4");
  ASSERT_FALSE(Scalar("UPDATE nodes SET expiry = now() - interval '1 hour' WHERE id = " + std::to_string(hsa_[3].id) +
                      " RETURNING id").empty());
  expect_rejected(hsa_[3].node_key, hsa_[3].machine_key, "expired node");
  ASSERT_FALSE(Scalar("UPDATE nodes SET deleted_at = now() WHERE id = " + std::to_string(hsa_[4].id) + " RETURNING id").empty());
  expect_rejected(hsa_[4].node_key, hsa_[4].machine_key, "soft-deleted node");
  // A node expiring in the future is served.
  ASSERT_FALSE(Scalar("UPDATE nodes SET expiry = now() + interval '1 hour' WHERE id = " + std::to_string(hsa_[5].id) +
                      " RETURNING id").empty());
  StreamProbe future;
  future.Upgrade(s.addr());
  EXPECT_EQ(future.Map(hsa_[5].node_key, hsa_[5].machine_key), "OK 3 " + std::to_string(hsa_[5].id));

  // The good stream was never disturbed.
  EXPECT_EQ(good.ReadLine(2000).rfind("KA 3 ", 0), 0u);

  // Without the Upgrade header headscale answers 500 (proxy misconfigured).
  StreamProbe no_upgrade;
  EXPECT_EQ(no_upgrade.Upgrade(s.addr(), "hsa.demo.com", false), "HTTP/1.1 500 Internal Server Error");
}

// A node slowed on purpose (--absorb-per-s 1): streams beyond one a second wait in line, connected but not
// served. headscale's /debug/batcher (read by headshift's ConnectedNodesReader) and the API's `online` count
// only served streams, never more than the limit allows for the time measured, and every stream is served
// in the end.
TEST_P(StandinTest, AbsorbLimitServesStreamsInLineAndTheBatcherShowsServedOnes) {
  Standin s(dsn_, "3", "per-request", 200, {"--absorb-per-s", "1"});
  std::set<std::string> ids;
  for (const auto& n : hsa_) ids.insert(std::to_string(n.id));
  ConnectedNodesReader batcher(s.url(), kApiKey, s.url(), 2000);
  ConnectedNodesReader api(s.url(), kApiKey, "", 2000);
  auto none = batcher.Connected(ids, "hsa");
  ASSERT_TRUE(none.ok()) << none.status().ToString();
  EXPECT_TRUE(none->empty());
  EXPECT_EQ(batcher.source(), "batcher");
  std::vector<std::unique_ptr<StreamProbe>> probes;
  auto t0 = std::chrono::steady_clock::now();
  for (const auto& n : hsa_) {
    probes.push_back(std::make_unique<StreamProbe>());
    ASSERT_EQ(probes.back()->Upgrade(s.addr()), "HTTP/1.1 101 Switching Protocols");
    ASSERT_TRUE(probes.back()->SendMap(n.node_key, n.machine_key));
  }
  auto early = batcher.Connected(ids, "hsa");
  double elapsed_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  ASSERT_TRUE(early.ok()) << early.status().ToString();
  // One token to start with, then one a second (+1 for the read's own latency).
  EXPECT_LE(static_cast<double>(early->size()), 2.0 + elapsed_s) << elapsed_s << " s";
  std::set<std::string> all;
  for (int i = 0; i < 300 && all.size() < ids.size(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    auto now = batcher.Connected(ids, "hsa");
    ASSERT_TRUE(now.ok()) << now.status().ToString();
    all = *now;
  }
  EXPECT_EQ(all, ids);
  for (size_t i = 0; i < hsa_.size(); ++i) EXPECT_EQ(probes[i]->ReadLine(2000), "OK 3 " + std::to_string(hsa_[i].id));
  auto online = api.Connected(ids, "hsa");
  ASSERT_TRUE(online.ok()) << online.status().ToString();
  EXPECT_EQ(*online, ids);
  EXPECT_EQ(api.source(), "api");
}

TEST_P(StandinTest, DisconnectWritesLastSeenAndEndpointsAfterGrace) {
  Standin s(dsn_, "3", "per-request", /*grace_ms=*/300);
  std::string id = std::to_string(hsa_[0].id);
  ASSERT_FALSE(Scalar("UPDATE nodes SET last_seen = now() - interval '1 day' WHERE id = " + id + " RETURNING id").empty());
  const std::string endpoints = R"(["198.18.0.77:41641","192.168.7.7:41641"])";
  {
    StreamProbe p;
    p.Upgrade(s.addr());
    ASSERT_EQ(p.Map(hsa_[0].node_key, hsa_[0].machine_key, endpoints), "OK 3 " + id);
    // Changed endpoints are persisted while connected (headscale persists endpoint changes).
    std::string seen;
    for (int i = 0; i < 100 && seen != endpoints; ++i) {
      seen = Scalar("SELECT endpoints FROM nodes WHERE id = " + id);
      if (seen != endpoints) std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    EXPECT_EQ(seen, endpoints);
    EXPECT_EQ(Scalar("SELECT last_seen < now() - interval '1 hour' FROM nodes WHERE id = " + id), "t");
  }
  // After the grace period, last_seen is written.
  std::string fresh;
  for (int i = 0; i < 200 && fresh != "t"; ++i) {
    fresh = Scalar("SELECT last_seen > now() - interval '1 minute' FROM nodes WHERE id = " + id);
    if (fresh != "t") std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_EQ(fresh, "t");
  HeadscaleClient api(s.url(), kApiKey, 2000);
  auto nodes = api.ListNodes("hsa");
  ASSERT_TRUE(nodes.ok());
  EXPECT_FALSE((*nodes)[0].online);
  // The write touched only this cluster's row.
  EXPECT_EQ(Scalar("SELECT count(*) FROM nodes WHERE last_seen > now() - interval '1 minute'"), "1");
}

// A row inserted after start: per-request serves it at once; cached rejects it until SIGHUP.
TEST_P(StandinTest, CachedModeNeedsReloadPerRequestDoesNot) {
  Standin cached(dsn_, "3", "cached");
  Standin live(dsn_, "3", "per-request");
  // Move hsb's first node to cluster 3 (what a migration's copy does).
  ASSERT_FALSE(Scalar("UPDATE nodes SET cluster_id = '3' WHERE id = " + std::to_string(hsb_[0].id) + " RETURNING id").empty());
  ASSERT_FALSE(Scalar("UPDATE users SET cluster_id = '3' WHERE name = 'hsb' RETURNING id").empty());
  const std::string ok_line = "OK 3 " + std::to_string(hsb_[0].id);
  {
    StreamProbe p;
    p.Upgrade(live.addr());
    EXPECT_EQ(p.Map(hsb_[0].node_key, hsb_[0].machine_key), ok_line);
  }
  {
    StreamProbe p;
    p.Upgrade(cached.addr());
    EXPECT_EQ(p.Map(hsb_[0].node_key, hsb_[0].machine_key), "ERR 404 node not found");
  }
  HeadscaleClient api(cached.url(), kApiKey, 2000);
  EXPECT_TRUE(api.ListNodes("hsb")->empty());
  // A cached node keeps being served even after its row is deleted (NodeStore semantics).
  ASSERT_FALSE(Scalar("UPDATE nodes SET deleted_at = now() WHERE id = " + std::to_string(hsa_[1].id) + " RETURNING id").empty());
  {
    StreamProbe p;
    p.Upgrade(cached.addr());
    EXPECT_EQ(p.Map(hsa_[1].node_key, hsa_[1].machine_key), "OK 3 " + std::to_string(hsa_[1].id));
  }

  EXPECT_EQ(cached.Health()["reloads"], 0);
  ASSERT_EQ(kill(cached.pid(), SIGHUP), 0);
  for (int i = 0; i < 200 && cached.Health()["reloads"] != 1; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_EQ(cached.Health()["reloads"], 1);
  {
    StreamProbe p;
    p.Upgrade(cached.addr());
    EXPECT_EQ(p.Map(hsb_[0].node_key, hsb_[0].machine_key), ok_line);
  }
  auto listed = api.ListNodes("hsb");
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_EQ((*listed)[0].node_key, hsb_[0].node_key);
  {
    StreamProbe p;  // deleted row: gone after the reload
    p.Upgrade(cached.addr());
    EXPECT_EQ(p.Map(hsa_[1].node_key, hsa_[1].machine_key), "ERR 404 node not found");
  }
}

// Several hundred streams at once on the one epoll thread, accepted in batched lookups.
TEST_P(StandinTest, HoldsManyConcurrentStreams) {
  auto more = db_->Exec("SELECT n.node_key, n.machine_key FROM nodes n WHERE n.cluster_id = '3' ORDER BY id");
  ASSERT_TRUE(more.ok());
  Standin s(dsn_, "3", "per-request");
  const int kStreams = 300;
  std::vector<std::unique_ptr<StreamProbe>> probes;
  for (int i = 0; i < kStreams; ++i) {
    auto p = std::make_unique<StreamProbe>();
    ASSERT_EQ(p->Upgrade(s.addr()), "HTTP/1.1 101 Switching Protocols");
    int row = i % more->rows();
    std::string line = p->Map(more->Get(row, 0), more->Get(row, 1));
    ASSERT_EQ(line.rfind("OK 3 ", 0), 0u) << i << ": " << line;
    probes.push_back(std::move(p));
  }
  EXPECT_EQ(s.Health()["streams"], kStreams);
  for (auto& p : probes) EXPECT_EQ(p->ReadLine(2000).rfind("KA 3 ", 0), 0u);
}

INSTANTIATE_TEST_SUITE_P(ClusterIdTypes, StandinTest, ::testing::Values(false, true),
                         [](const auto& i) { return std::string(i.param ? "text" : "bigint"); });

}  // namespace
}  // namespace headshift::sandbox
