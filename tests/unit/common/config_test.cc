// Config model: valid configs parse into typed structs; each bad config is refused with a message
// that names the key path and the line/column.
#include "common/config.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>

#include "tests/fixtures/cli_runner.h"

namespace headshift {
namespace {

const char* kValid = R"(database:
  layout: shared
  dsn_env: HS_TEST_DSN
clusters:
  - id: "3"
    control_url: http://127.0.0.1:8083
    api_key_file: /tmp/k3
    backend: headscale-cluster3
    reload_command: [systemctl, restart, headscale@3]
    cached_nodes: true
    capacity: 100
  - id: "4"
    control_url: http://127.0.0.1:8084
    backend: headscale-cluster4
proxy:
  kind: haproxy
  haproxy:
    runtime_socket: /run/haproxy/admin.sock
    map_file: /etc/haproxy/tenants.map
    host_template: "{tenant}.demo.com"
sessions:
  hosts:
    - name: edge
      netns: edge
      ports: [80, 443]
      conntrack_netns: lb
tenants:
  hsa:
    extra_cidrs: [198.51.100.0/28]
    allowed_clusters: ["4"]
timeouts:
  reconnect_ms: 5000
  db_lock_ms: 2500
)";

TEST(ConfigTest, ValidConfigParsesIntoTypedStructs) {
  auto c = ParseConfig(kValid, "t.yaml");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->database.layout, DbLayout::kShared);
  EXPECT_EQ(c->database.dsn.env, "HS_TEST_DSN");
  ASSERT_EQ(c->clusters.size(), 2u);
  EXPECT_EQ(c->clusters[0].reload_command, (std::vector<std::string>{"systemctl", "restart", "headscale@3"}));
  EXPECT_TRUE(c->clusters[0].cached_nodes);
  EXPECT_EQ(c->clusters[0].capacity, 100);
  EXPECT_EQ(c->proxy.kind, ProxyKind::kHaproxy);
  EXPECT_EQ(c->proxy.haproxy.host_template, "{tenant}.demo.com");
  ASSERT_EQ(c->sessions.hosts.size(), 1u);
  EXPECT_EQ(c->sessions.hosts[0].ports, (std::vector<uint16_t>{80, 443}));
  EXPECT_EQ(c->sessions.hosts[0].conntrack_netns, "lb");
  EXPECT_EQ(c->tenants.at("hsa").allowed_clusters, std::vector<std::string>{"4"});
  EXPECT_EQ(c->timeouts.reconnect_ms, 5000);
  EXPECT_EQ(c->timeouts.http_ms, 3000);  // default
  EXPECT_EQ(c->timeouts.db_lock_ms, 2500);
  EXPECT_EQ(c->timeouts.db_statement_ms, 900000);  // default
  EXPECT_NE(c->FindCluster("4"), nullptr);
  EXPECT_EQ(c->FindCluster("5"), nullptr);
}

TEST(ConfigTest, ExampleConfigInRepoParses) {
  auto c = LoadConfig(std::string(HEADSHIFT_SOURCE_DIR) + "/playbooks/examples/headshift.yaml");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->clusters.size(), 2u);
}

struct BadCase {
  const char* name;
  std::string from;  // substring of kValid to replace
  std::string to;
  std::vector<std::string> expect;  // substrings of the error message
};

class BadConfigTest : public ::testing::TestWithParam<BadCase> {};

TEST_P(BadConfigTest, RefusedWithKeyPathAndPosition) {
  const BadCase& b = GetParam();
  std::string text = kValid;
  size_t pos = text.find(b.from);
  ASSERT_NE(pos, std::string::npos) << b.from;
  text.replace(pos, b.from.size(), b.to);
  auto c = ParseConfig(text, "bad.yaml");
  ASSERT_FALSE(c.ok()) << b.name;
  EXPECT_EQ(c.status().code(), ExitCode::kBadInput);
  for (const auto& e : b.expect) {
    EXPECT_NE(c.status().message().find(e), std::string::npos)
        << b.name << ": expected '" << e << "' in: " << c.status().message();
  }
}

INSTANTIATE_TEST_SUITE_P(
    Cases, BadConfigTest,
    ::testing::Values(
        BadCase{"unknown_key", "    cached_nodes: true\n", "    cached_node: true\n",
                {"clusters[0].cached_node: unknown key", "line 10, column 5"}},
        BadCase{"wrong_type_int", "capacity: 100", "capacity: lots",
                {"clusters[0].capacity: expected an integer", "line 11, column 15"}},
        BadCase{"wrong_type_list", "ports: [80, 443]", "ports: 80",
                {"sessions.hosts[0].ports: expected a non-empty list", "line 25, column 14"}},
        BadCase{"missing_required", "    backend: headscale-cluster4\n", "",
                {"clusters[1].backend: required field is missing", "line 12"}},
        BadCase{"dangling_cluster", "allowed_clusters: [\"4\"]", "allowed_clusters: [\"9\"]",
                {"tenants.hsa.allowed_clusters[0]: cluster '9' is not defined", "defined: 3, 4", "line 30, column 23"}},
        BadCase{"inline_secret", "  dsn_env: HS_TEST_DSN", "  dsn: host=x password=hunter22",
                {"database.dsn: secrets are never inline", "dsn_env"}},
        BadCase{"bad_layout", "layout: shared", "layout: sharded",
                {"database.layout: 'sharded' is not one of shared, split", "line 2"}},
        BadCase{"bad_proxy_kind", "kind: haproxy", "kind: nginx",
                {"proxy.kind: 'nginx' is not one of traefik-file, haproxy"}},
        BadCase{"duplicate_cluster", "  - id: \"4\"", "  - id: \"3\"", {"clusters[1].id: cluster id '3' is defined twice"}},
        BadCase{"port_out_of_range", "ports: [80, 443]", "ports: [80, 70000]",
                {"sessions.hosts[0].ports[1]: expected a port 1-65535"}},
        BadCase{"bad_url", "http://127.0.0.1:8084", "127.0.0.1:8084",
                {"clusters[1].control_url: '127.0.0.1:8084' is not an http:// or https:// URL"}},
        BadCase{"template_without_tenant", "\"{tenant}.demo.com\"", "\"demo.com\"",
                {"proxy.haproxy.host_template: template 'demo.com' must contain {tenant}"}},
        BadCase{"yaml_syntax", "clusters:\n", "clusters: [\n", {"invalid YAML at line"}},
        BadCase{"split_needs_cluster_dsn", "layout: shared", "layout: split",
                {"clusters[0].dsn: required in split layout"}},
        BadCase{"reload_drops_sessions_not_bool", "    cached_nodes: true\n",
                "    cached_nodes: true\n    reload_drops_sessions: sometimes\n",
                {"clusters[0].reload_drops_sessions: expected true or false", "line 11, column 28"}},
        BadCase{"reload_drops_sessions_without_reload_command", "    backend: headscale-cluster4\n",
                "    backend: headscale-cluster4\n    reload_drops_sessions: false\n",
                {"clusters[1].reload_drops_sessions: set, but the cluster has no reload_command", "line 15, column 28"}},
        BadCase{"no_cluster_column_in_shared_layout", "  dsn_env: HS_TEST_DSN\n",
                "  dsn_env: HS_TEST_DSN\n  cluster_column: none\n",
                {"database.cluster_column: none (stock headscale, no cluster column) needs database.layout: split",
                 "line 4, column 19"}},
        BadCase{"cluster_column_not_a_name", "  dsn_env: HS_TEST_DSN\n",
                "  dsn_env: HS_TEST_DSN\n  cluster_column: \"cluster id\"\n",
                {"database.cluster_column: 'cluster id' is neither a column name nor none", "line 4"}},
        BadCase{"negative_reset_rate", "      conntrack_netns: lb\n", "      conntrack_netns: lb\n  reset_rate: -5\n",
                {"sessions.reset_rate: -5 is out of range [0, 10000000]", "line 27, column 15"}},
        BadCase{"bad_pacing", "      conntrack_netns: lb\n", "      conntrack_netns: lb\n  pacing: gentle\n",
                {"sessions.pacing: pacing 'gentle' is not one of adaptive, fixed", "line 27"}},
        BadCase{"wave_timeout_shorter_than_window", "      conntrack_netns: lb\n",
                "      conntrack_netns: lb\n  waves: {window_ms: 2000, timeout_ms: 1000}\n",
                {"sessions.waves.timeout_ms: 1000 is shorter than window_ms 2000", "line 27"}},
        BadCase{"wave_back_fraction_out_of_range", "      conntrack_netns: lb\n",
                "      conntrack_netns: lb\n  waves: {back_fraction: 1.5}\n",
                {"sessions.waves.back_fraction", "out of range (0, 1]"}},
        BadCase{"wave_unknown_key", "      conntrack_netns: lb\n", "      conntrack_netns: lb\n  waves: {size: 3}\n",
                {"sessions.waves.size: unknown key"}}),
    [](const auto& info) { return std::string(info.param.name); });

// Pacing defaults to adaptive with the documented wave tuning; every key is read as written.
TEST(ConfigTest, SessionPacingDefaultsAndKeys) {
  auto c = ParseConfig(kValid, "t.yaml");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->sessions.pacing, ResetPacing::kAdaptive);
  EXPECT_EQ(c->sessions.reset_rate, 2000);
  EXPECT_EQ(c->sessions.waves.first, 16);
  EXPECT_EQ(c->sessions.waves.window_ms, 1000);
  EXPECT_DOUBLE_EQ(c->sessions.waves.back_fraction, 0.9);
  EXPECT_EQ(c->sessions.waves.timeout_ms, 15000);
  std::string text = kValid;
  std::string at = "      conntrack_netns: lb\n";
  text.replace(text.find(at), at.size(),
               at + "  pacing: fixed\n  waves: {first: 4, window_ms: 500, back_fraction: 0.5, timeout_ms: 600}\n");
  c = ParseConfig(text, "t.yaml");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->sessions.pacing, ResetPacing::kFixed);
  EXPECT_EQ(c->sessions.waves.first, 4);
  EXPECT_EQ(c->sessions.waves.window_ms, 500);
  EXPECT_DOUBLE_EQ(c->sessions.waves.back_fraction, 0.5);
  EXPECT_EQ(c->sessions.waves.timeout_ms, 600);
}

// A reload is a restart unless the config says otherwise (headscale >= 0.27 reloads nodes only by
// restarting); `false` is read as written.
TEST(ConfigTest, ReloadDropsSessionsDefaultsToTrue) {
  auto c = ParseConfig(kValid, "t.yaml");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_TRUE(c->clusters[0].reload_drops_sessions);
  std::string text = kValid;
  std::string at = "    cached_nodes: true\n";
  text.replace(text.find(at), at.size(), at + "    reload_drops_sessions: false\n");
  c = ParseConfig(text, "t.yaml");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_FALSE(c->clusters[0].reload_drops_sessions);
}

// Stock headscale: one database per node (split), no cluster column; the default is the profile's.
TEST(ConfigTest, StockHeadscaleSplitLayoutWithoutClusterColumn) {
  const std::string stock =
      "database:\n  layout: split\n  cluster_column: none\n"
      "clusters:\n"
      "  - {id: a, control_url: 'http://10.0.0.1:8080', backend: hs-a, dsn_env: HS_A}\n"
      "  - {id: b, control_url: 'http://10.0.0.2:8080', backend: hs-b, dsn_env: HS_B}\n"
      "proxy: {kind: haproxy, haproxy: {runtime_socket: /run/h.sock, map_file: /etc/h.map}}\n";
  auto c = ParseConfig(stock, "stock.yaml");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->database.layout, DbLayout::kSplit);
  EXPECT_TRUE(c->database.NoClusterColumn());
  EXPECT_EQ(c->journal.location, "target");  // no shared database
  auto fork = ParseConfig(kValid, "t.yaml");
  ASSERT_TRUE(fork.ok());
  EXPECT_EQ(fork->database.cluster_column, "");  // the schema profile's (cluster_id)
  EXPECT_FALSE(fork->database.NoClusterColumn());
}

TEST(ConfigTest, NoClusterColumnWithSharedLayoutIsExit2BeforeAnythingConnects) {
  std::string path = testing::WriteTempFile(
      "stock-shared.yaml",
      "database: {layout: shared, dsn_env: HS_NOT_SET_ANYWHERE, cluster_column: none}\n"
      "clusters: [{id: '3', control_url: 'http://127.0.0.1:1', backend: b3}, "
      "{id: '4', control_url: 'http://127.0.0.1:1', backend: b4}]\n"
      "proxy: {kind: haproxy, haproxy: {runtime_socket: /nonexistent/h.sock, map_file: /nonexistent/t.map}}\n");
  for (const std::vector<std::string>& cmd : std::vector<std::vector<std::string>>{
           {"--json", "--config", path, "doctor"}, {"--json", "--config", path, "plan", "hsa", "--to", "4"}}) {
    auto r = testing::RunHeadshift(cmd);
    EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
    EXPECT_NE(r.out.find("database.cluster_column: none"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("database.layout: split"), std::string::npos) << r.out;
  }
}

TEST(ConfigTest, UpstreamUrlDefaultsToControlUrlAndIsChecked) {
  auto c = ParseConfig(kValid, "t.yaml");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->clusters[0].upstream_url, "http://127.0.0.1:8083");  // default: control_url
  std::string text = kValid;
  std::string at = "    backend: headscale-cluster4\n";
  text.replace(text.find(at), at.size(), at + "    upstream_url: http://10.0.4.2:8080\n");
  c = ParseConfig(text, "t.yaml");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->clusters[1].upstream_url, "http://10.0.4.2:8080");
  text.replace(text.find("http://10.0.4.2:8080"), 20, "10.0.4.2:8080");
  c = ParseConfig(text, "t.yaml");
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("clusters[1].upstream_url: '10.0.4.2:8080' is not an http:// or https:// URL"),
            std::string::npos)
      << c.status().message();
}

TEST(ConfigTest, DebugUrlIsOptionalAndChecked) {
  auto c = ParseConfig(kValid, "t.yaml");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->clusters[0].debug_url, "");  // default: the debug listener is not read
  std::string text = kValid;
  std::string at = "    backend: headscale-cluster4\n";
  text.replace(text.find(at), at.size(), at + "    debug_url: http://10.0.4.2:9090\n");
  c = ParseConfig(text, "t.yaml");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->clusters[1].debug_url, "http://10.0.4.2:9090");
  text.replace(text.find("http://10.0.4.2:9090"), 20, "10.0.4.2:9090");
  c = ParseConfig(text, "t.yaml");
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("clusters[1].debug_url: '10.0.4.2:9090' is not an http:// or https:// URL"),
            std::string::npos)
      << c.status().message();
}

TEST(ConfigTest, SecretFromFileIsResolvedAndRegistered) {
  std::string path = testing::WriteTempFile("secret", "s3cr3t-value\n");
  SecretRef ref{"", path};
  auto v = ResolveSecret(ref, "test");
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(*v, "s3cr3t-value");
  auto missing = ResolveSecret(SecretRef{"HS_DEFINITELY_UNSET_VAR", ""}, "database.dsn");
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("$HS_DEFINITELY_UNSET_VAR is not set"), std::string::npos);
}

TEST(ConfigTest, CliRejectsBadConfigWithExitCode2AndJsonError) {
  std::string path = testing::WriteTempFile("bad.yaml", "database: {layout: shared, dsn_env: X}\nclusters: []\n");
  auto r = testing::RunHeadshift({"--json", "--config", path, "doctor"});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  auto pos = r.out.find("\"kind\":\"bad_input\"");
  EXPECT_NE(pos, std::string::npos) << r.out;
  EXPECT_NE(r.out.find("clusters: expected a non-empty list"), std::string::npos) << r.out;
  // Exactly one JSON object, one line.
  EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 1);
}

TEST(ConfigTest, ConfigPathFromEnvironment) {
  auto r = testing::RunHeadshift({"--json", "doctor"}, {{"HEADSHIFT_CONFIG", "/nonexistent/hs.yaml"}});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.out.find("cannot read config file /nonexistent/hs.yaml"), std::string::npos) << r.out;
}

TEST(ConfigTest, UnknownCommandAndBadFlagAreExit2) {
  EXPECT_EQ(testing::RunHeadshift({"frobnicate"}).exit_code, 2);
  EXPECT_EQ(testing::RunHeadshift({"--log-level", "loud", "doctor", "--host-only"}).exit_code, 2);
}

// proxy.kind fleet: the control host of a fleet (playbooks/ansible) has no proxy of its own; the proxy
// hosts each have their own config. Proxy subkeys and sessions.hosts are refused there, by key path.
TEST(ConfigTest, FleetProxyKindHasNoLocalProxyOrSessionHosts) {
  const std::string base =
      "database: {layout: shared, dsn_env: HS_TEST_DSN}\n"
      "clusters: [{id: '3', control_url: 'http://127.0.0.1:1', backend: b3}, "
      "{id: '4', control_url: 'http://127.0.0.1:1', backend: b4}]\n";
  auto c = ParseConfig(base + "proxy: {kind: fleet}\n", "fleet.yaml");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->proxy.kind, ProxyKind::kFleet);
  EXPECT_STREQ(ProxyKindName(c->proxy.kind), "fleet");
  auto with_haproxy = ParseConfig(base + "proxy: {kind: fleet, haproxy: {runtime_socket: /s, map_file: /m}}\n", "f.yaml");
  ASSERT_FALSE(with_haproxy.ok());
  EXPECT_NE(with_haproxy.status().message().find("proxy.haproxy: not used with kind fleet"), std::string::npos)
      << with_haproxy.status().message();
  auto with_hosts = ParseConfig(base + "proxy: {kind: fleet}\nsessions: {hosts: [{name: edge, ports: [80]}]}\n", "f.yaml");
  ASSERT_FALSE(with_hosts.ok());
  EXPECT_NE(with_hosts.status().message().find("sessions.hosts: not used with proxy.kind fleet"), std::string::npos)
      << with_hosts.status().message();
  // `route set` has no proxy to change on the control host: exit 2 with the way to do it
  std::string path = testing::WriteTempFile("fleet.yaml", base + "proxy: {kind: fleet}\n");
  auto r = testing::RunHeadshift({"--config", path, "route", "set", "hsa", "4"});
  EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
  EXPECT_NE((r.out + r.err).find("fleet"), std::string::npos) << r.out << r.err;
}

}  // namespace
}  // namespace headshift
