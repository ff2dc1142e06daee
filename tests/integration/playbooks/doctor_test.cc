// `headshift doctor` against real parts: a throwaway PostgreSQL (tables present / absent / without
// cluster_id) and local HTTP servers answering /key (same key / different keys). Also proves that a
// DSN password and an API key never appear in logs or --json output.
#include "playbooks/doctor.h"

#include <gtest/gtest.h>
#include <httplib.h>

#include <nlohmann/json.hpp>
#include <thread>

#include "common/pg.h"
#include "controlplane/headscale_client.h"
#include "sandbox/headscale_schema.h"
#include "tests/fixtures/cli_runner.h"
#include "tests/fixtures/pg_server.h"

namespace headshift {
namespace {

// A local HTTP server answering GET /key with a fixed Noise key and logging the Authorization
// header it saw (so the test can prove the API key was sent, yet never printed).
class KeyServer {
 public:
  explicit KeyServer(std::string key) : key_(std::move(key)) {
    srv_.Get("/key", [this](const httplib::Request&, httplib::Response& res) {
      res.set_content(nlohmann::json{{"publicKey", key_}, {"legacyPublicKey", "mkey:0000"}}.dump(), "application/json");
    });
    srv_.Get("/api/v1/node", [](const httplib::Request& req, httplib::Response& res) {
      if (req.get_header_value("Authorization") != "Bearer hskey-api-abcdef-SECRETAPIKEY123") {
        res.status = 401;
        return;
      }
      res.set_content(R"({"nodes":[]})", "application/json");
    });
    port_ = srv_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { srv_.listen_after_bind(); });
    while (!srv_.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ~KeyServer() {
    srv_.stop();
    thread_.join();
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }

 private:
  std::string key_;
  httplib::Server srv_;
  int port_ = 0;
  std::thread thread_;
};

std::string Dsn(const std::string& db) { return testing::CreateTestDatabase(db); }

void MakeSchema(const std::string& dsn, bool with_cluster_id) {
  auto c = PgConn::Connect(dsn);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  ASSERT_TRUE(sandbox::CreateHeadscaleSchema(**c, {sandbox::ClusterIdType::kText, with_cluster_id}).ok());
}

TEST(DoctorDatabaseTest, ReportsClusterIdTypeWhenTablesPresent) {
  std::string dsn = Dsn("doc_ok");
  MakeSchema(dsn, true);
  DoctorCheck c = CheckDatabase("shared", dsn, 5000);
  EXPECT_TRUE(c.ok) << c.detail;
  EXPECT_NE(c.detail.find("nodes.cluster_id text"), std::string::npos) << c.detail;
}

TEST(DoctorDatabaseTest, FailsWhenTablesAbsent) {
  std::string dsn = Dsn("doc_empty");
  DoctorCheck c = CheckDatabase("shared", dsn, 5000);
  EXPECT_FALSE(c.ok);
  EXPECT_NE(c.detail.find("headscale tables are missing: nodes, pre_auth_keys, users"), std::string::npos) << c.detail;
}

TEST(DoctorDatabaseTest, FailsWhenNoClusterIdColumn) {
  std::string dsn = Dsn("doc_nocid");
  MakeSchema(dsn, false);
  DoctorCheck c = CheckDatabase("shared", dsn, 5000);
  EXPECT_FALSE(c.ok);
  EXPECT_NE(c.detail.find("no cluster_id column on: nodes, pre_auth_keys, users"), std::string::npos) << c.detail;
  EXPECT_NE(c.hint.find("add cluster_id"), std::string::npos);
}

TEST(DoctorDatabaseTest, FailsWhenServerUnreachable) {
  DoctorCheck c = CheckDatabase("shared", "host=/nonexistent port=1 user=x dbname=y", 2000);
  EXPECT_FALSE(c.ok);
  EXPECT_NE(c.detail.find("cannot connect"), std::string::npos) << c.detail;
}

Config TwoClusters(const std::string& url3, const std::string& url4) {
  Config cfg;
  cfg.clusters.push_back({"3", url3, {}, "b3", {}, {}, 0, false, true});
  cfg.clusters.push_back({"4", url4, {}, "b4", {}, {}, 0, false, true});
  return cfg;
}

TEST(DoctorNoiseKeyTest, SameKeyPasses) {
  KeyServer a("mkey:1111"), b("mkey:1111");
  auto checks = CheckNoiseKeys(TwoClusters(a.url(), b.url()));
  ASSERT_EQ(checks.size(), 3u);
  EXPECT_TRUE(checks[0].ok);
  EXPECT_TRUE(checks[1].ok);
  EXPECT_TRUE(checks[2].ok) << checks[2].detail;
}

TEST(DoctorNoiseKeyTest, DifferentKeysFailNamingTheClusters) {
  KeyServer a("mkey:1111"), b("mkey:2222");
  auto checks = CheckNoiseKeys(TwoClusters(a.url(), b.url()));
  ASSERT_EQ(checks.size(), 3u);
  EXPECT_FALSE(checks[2].ok);
  EXPECT_NE(checks[2].detail.find("[3] mkey:1111"), std::string::npos) << checks[2].detail;
  EXPECT_NE(checks[2].detail.find("[4] mkey:2222"), std::string::npos) << checks[2].detail;
  EXPECT_NE(checks[2].hint.find("noise.private_key_path"), std::string::npos);
}

TEST(DoctorNoiseKeyTest, UnreachableControlPlaneFails) {
  KeyServer a("mkey:1111");
  auto checks = CheckNoiseKeys(TwoClusters(a.url(), "http://127.0.0.1:1"));
  EXPECT_TRUE(checks[0].ok);
  EXPECT_FALSE(checks[1].ok);
  EXPECT_NE(checks[1].detail.find("Couldn't connect"), std::string::npos) << checks[1].detail;
}

// A node list of another shape than headscale's (a proxy's error page in JSON, another API version)
// is an error naming the URL, never an exception that would abort a migration half-way.
TEST(HeadscaleClientTest, NodeListOfTheWrongShapeIsAnErrorNotACrash) {
  std::string body;
  httplib::Server srv;
  srv.Get("/api/v1/node", [&body](const httplib::Request&, httplib::Response& res) { res.set_content(body, "application/json"); });
  int port = srv.bind_to_any_port("127.0.0.1");
  std::thread t([&] { srv.listen_after_bind(); });
  while (!srv.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  HeadscaleClient api("http://127.0.0.1:" + std::to_string(port), "hskey-api-test", 2000);
  for (const char* bad : {R"({"nodes":[{"id":5}]})", R"({"nodes":{"a":1}})", R"({"nodes":[3]})",
                          R"({"nodes":[{"id":"1","online":"yes"}]})", R"({"nodes":[{"user":{"name":7}}]})"}) {
    body = bad;
    auto r = api.ListNodes("hsa");
    EXPECT_FALSE(r.ok()) << bad;
    EXPECT_NE(r.status().message().find("/api/v1/node"), std::string::npos) << r.status().ToString();
  }
  body = R"({"nodes":[{"id":"1","givenName":"a","online":true,"user":{"name":"hsa"}}]})";
  auto good = api.ListNodes("hsa");
  ASSERT_TRUE(good.ok()) << good.status().ToString();
  ASSERT_EQ(good->size(), 1u);
  EXPECT_TRUE((*good)[0].online);
  srv.stop();
  t.join();
}

// End to end through the CLI: exit codes and redaction of secrets in logs and JSON.
class DoctorCliTest : public ::testing::Test {
 protected:
  std::string WriteConfig(const std::string& dsn_file, const std::string& url3, const std::string& url4,
                          const std::string& apikey_file) {
    return testing::WriteTempFile(
        "doctor-" + std::to_string(++n_) + ".yaml",
        "database: {layout: shared, dsn_file: " + dsn_file + "}\n"
        "clusters:\n"
        "  - {id: '3', control_url: '" + url3 + "', backend: b3, api_key_file: " + apikey_file + "}\n"
        "  - {id: '4', control_url: '" + url4 + "', backend: b4, api_key_file: " + apikey_file + "}\n"
        "proxy: {kind: haproxy, haproxy: {runtime_socket: /nonexistent/haproxy.sock, map_file: /nonexistent/t.map}}\n");
  }
  int n_ = 0;
};

TEST_F(DoctorCliTest, JsonReportAndExitCodeOneWhenProxyMissing) {
  std::string dsn = Dsn("doc_cli");
  MakeSchema(dsn, true);
  // Give the postgres user a password and connect with it, so the DSN carries a real secret.
  {
    auto c = PgConn::Connect(dsn);
    ASSERT_TRUE(c.ok());
    ASSERT_TRUE((*c)->ExecScript("ALTER USER postgres PASSWORD 'Sup3rS3cretPw'").ok());
  }
  std::string dsn_with_pw = dsn + " password=Sup3rS3cretPw";
  std::string dsn_file = testing::WriteTempFile("dsn", dsn_with_pw + "\n");
  std::string key_file = testing::WriteTempFile("apikey", "hskey-api-abcdef-SECRETAPIKEY123\n");
  KeyServer a("mkey:abab"), b("mkey:abab");
  std::string cfg = WriteConfig(dsn_file, a.url(), b.url(), key_file);

  auto r = testing::RunHeadshift({"--json", "--log-level", "trace", "--config", cfg, "doctor"});
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;  // only the proxy check fails
  auto j = nlohmann::json::parse(r.out);
  ASSERT_TRUE(j.is_object());
  EXPECT_EQ(j["exit_code"], 1);
  std::map<std::string, bool> ok;
  for (const auto& c : j["checks"]) ok[c["name"]] = c["ok"];
  EXPECT_TRUE(ok["database[shared]"]);
  EXPECT_TRUE(ok["noise_keys"]);
  EXPECT_FALSE(ok["proxy[haproxy]"]);
  EXPECT_TRUE(ok["cap_net_admin"]);
  EXPECT_TRUE(ok["sock_destroy"]);
  // The trace log did print the DSN and the Authorization header, with the secrets masked.
  EXPECT_NE(r.err.find("password=***"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("Authorization: Bearer ***"), std::string::npos) << r.err;
  for (const std::string& secret : {std::string("Sup3rS3cretPw"), std::string("SECRETAPIKEY123")}) {
    EXPECT_EQ(r.out.find(secret), std::string::npos) << "secret in stdout";
    EXPECT_EQ(r.err.find(secret), std::string::npos) << "secret in stderr";
  }
}

TEST_F(DoctorCliTest, SecretsRedactedFromErrorMessagesAndLogs) {
  // A DSN pointing nowhere: libpq's error could echo connection parameters; the password must not leak.
  std::string dsn_file =
      testing::WriteTempFile("dsn-bad", "host=/nonexistent port=5 user=u dbname=d password=LeakyPassw0rd\n");
  std::string key_file = testing::WriteTempFile("apikey2", "hskey-api-abcdef-SECRETAPIKEY123\n");
  std::string cfg = WriteConfig(dsn_file, "http://127.0.0.1:1", "http://127.0.0.1:1", key_file);
  auto r = testing::RunHeadshift({"--json", "--log-level", "trace", "--config", cfg, "doctor"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.out.find("LeakyPassw0rd"), std::string::npos) << r.out;
  EXPECT_EQ(r.err.find("LeakyPassw0rd"), std::string::npos) << r.err;
  auto human = testing::RunHeadshift({"--log-level", "trace", "--config", cfg, "doctor"});
  EXPECT_EQ(human.exit_code, 1);
  EXPECT_NE(human.out.find("FAIL  database[shared]"), std::string::npos) << human.out;
  EXPECT_EQ(human.out.find("LeakyPassw0rd"), std::string::npos);
  EXPECT_EQ(human.err.find("LeakyPassw0rd"), std::string::npos);
}

TEST(DoctorHostTest, HostChecksPassAsRoot) {
  DoctorReport rep = RunDoctor(nullptr);
  ASSERT_EQ(rep.checks.size(), 2u);
  EXPECT_TRUE(rep.checks[0].ok) << rep.checks[0].detail;
  EXPECT_TRUE(rep.checks[1].ok) << rep.checks[1].detail;
  EXPECT_EQ(rep.ExitCode(), 0);
}

TEST(DoctorHostTest, WithoutCapNetAdminExitsFive) {
  // Drop CAP_NET_ADMIN from the bounding set with setpriv (util-linux), then run doctor.
  auto r = testing::RunProgram({"setpriv", "--inh-caps=-net_admin", "--bounding-set=-net_admin", HEADSHIFT_BINARY,
                                "--json", "doctor", "--host-only"});
  EXPECT_EQ(r.exit_code, 5) << r.out << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_FALSE(j["checks"][0]["ok"]);
  EXPECT_NE(j["checks"][0]["hint"].get<std::string>().find("run as root"), std::string::npos);
}

}  // namespace
}  // namespace headshift
