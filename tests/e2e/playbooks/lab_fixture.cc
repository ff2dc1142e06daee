#include "tests/e2e/playbooks/lab_fixture.h"

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include "common/atomic_file.h"
#include "common/config.h"
#include "common/pg.h"

namespace headshift::testing {

LabFixture::LabFixture(sandbox::LabOptions options) {
  // Labs of earlier runs of this test that were killed (e.g. by a ctest timeout) are swept by `up`.
  options.sweep_prefix = options.name + "-";
  options.name = options.name + "-" + std::to_string(getpid() % 100000);
  name_ = options.name;
  auto info = sandbox::LabUp(options);
  if (!info.ok()) {
    ADD_FAILURE() << "lab up failed: " << info.status().ToString();
    return;
  }
  info_ = *info;
  up_ = true;
}

LabFixture::~LabFixture() {
  if (!name_.empty()) {
    auto down = sandbox::LabDown(name_, info_.state_dir.empty() ? sandbox::DefaultStateDir(name_) : info_.state_dir);
    if (!down.ok()) ADD_FAILURE() << "lab down failed: " << down.status().ToString();
  }
}

LabFixture::Result LabFixture::Headshift(const std::vector<std::string>& args,
                                         const std::map<std::string, std::string>& env) {
  std::vector<std::string> full{"--json", "--config", info_.config_path};
  full.insert(full.end(), args.begin(), args.end());
  CliRun r = RunHeadshift(full, env);
  Result out;
  out.exit_code = r.exit_code;
  out.err = r.err;
  out.json = nlohmann::json::parse(r.out, nullptr, false);
  if (out.json.is_discarded()) out.json = nlohmann::json::object();
  return out;
}

nlohmann::json LabFixture::LabState() {
  sandbox::LabQuery q;
  return sandbox::LabStatus(info_.state_dir, q).json;
}

bool LabFixture::WaitTenantOn(const std::string& tenant, const std::string& cluster, int64_t timeout_ms) {
  sandbox::LabQuery q;
  q.tenant = tenant;
  q.on_cluster = cluster;
  q.timeout_ms = timeout_ms;
  return sandbox::LabStatus(info_.state_dir, q).status.ok();
}

bool LabFixture::WaitAllConnected(int64_t timeout_ms) {
  sandbox::LabQuery q;
  q.wait_connected = true;
  q.timeout_ms = timeout_ms;
  return sandbox::LabStatus(info_.state_dir, q).status.ok();
}

void LabFixture::ResetStats() {
  Status st = sandbox::LabResetStats(info_.state_dir);
  EXPECT_TRUE(st.ok()) << st.ToString();
}

std::string LabFixture::TenantChecksum(const std::string& tenant, bool stable_only) {
  auto cfg = LoadConfig(info_.config_path);
  if (!cfg.ok()) return "config: " + cfg.status().message();
  std::vector<std::pair<std::string, SecretRef>> dbs;
  if (cfg->database.layout == DbLayout::kShared) {
    dbs.push_back({"shared", cfg->database.dsn});
  } else {
    for (const auto& c : cfg->clusters) dbs.push_back({c.id, c.dsn});
  }
  std::string nodes_cols = stable_only
                               ? "n.id, n.cluster_id, n.machine_key, n.node_key, n.disco_key, n.ipv4, n.ipv6, "
                                 "n.hostname, n.given_name, n.user_id, n.auth_key_id, n.expiry, n.deleted_at"
                               : "n.*";
  std::string out;
  for (const auto& [label, ref] : dbs) {
    auto dsn = ResolveDsn(ref, label);
    if (!dsn.ok()) return dsn.status().message();
    auto conn = PgConn::Connect(*dsn);
    if (!conn.ok()) return conn.status().message();
    auto r = (*conn)->Exec(
        "SELECT md5(coalesce((SELECT string_agg(u::text, '|' ORDER BY u.id) FROM users u WHERE u.name = $1), '') || '#' ||"
        " coalesce((SELECT string_agg(k::text, '|' ORDER BY k.id) FROM pre_auth_keys k JOIN users u ON u.id = k.user_id"
        "  WHERE u.name = $1), '') || '#' ||"
        " coalesce((SELECT string_agg((" + nodes_cols + ")::text, '|' ORDER BY n.id) FROM nodes n JOIN users u ON"
        "  u.id = n.user_id WHERE u.name = $1), ''))",
        {tenant});
    if (!r.ok()) return r.status().message();
    out += label + ":" + r->Get(0, 0) + " ";
  }
  return out;
}

std::string LabFixture::QueryOn(const std::string& cluster, const std::string& sql) {
  auto cfg = LoadConfig(info_.config_path);
  if (!cfg.ok()) return "error: config: " + cfg.status().message();
  SecretRef ref = cfg->database.dsn;
  if (cfg->database.layout == DbLayout::kSplit) {
    const ClusterConfig* c = cfg->FindCluster(cluster);
    if (!c) return "error: no cluster " + cluster;
    ref = c->dsn;
  }
  auto dsn = ResolveDsn(ref, cluster);
  if (!dsn.ok()) return "error: " + dsn.status().message();
  auto conn = PgConn::Connect(*dsn);
  if (!conn.ok()) return "error: " + conn.status().message();
  auto r = (*conn)->Exec(sql);
  if (!r.ok()) return "error: " + r.status().message();
  std::string out;
  for (int i = 0; i < r->rows(); ++i) {
    if (i) out += '\n';
    out += r->Get(i, 0);
  }
  return out;
}

std::string LabFixture::ExecOn(const std::string& cluster, const std::string& sql) {
  auto cfg = LoadConfig(info_.config_path);
  if (!cfg.ok()) return "config: " + cfg.status().message();
  SecretRef ref = cfg->database.dsn;
  if (cfg->database.layout == DbLayout::kSplit) {
    const ClusterConfig* c = cfg->FindCluster(cluster);
    if (!c) return "no cluster " + cluster;
    ref = c->dsn;
  }
  auto dsn = ResolveDsn(ref, cluster);
  if (!dsn.ok()) return dsn.status().message();
  auto conn = PgConn::Connect(*dsn);
  if (!conn.ok()) return conn.status().message();
  auto r = (*conn)->Exec(sql);
  return r.ok() ? "" : r.status().message();
}

std::string LabFixture::RouteOf(const std::string& tenant) {
  Result r = Headshift({"route", "show", tenant});
  if (r.exit_code != 0) return "error: " + r.json.dump() + r.err;
  const nlohmann::json& j = r.json;
  if (j.contains("routes") && j["routes"].is_array() && !j["routes"].empty()) {
    return j["routes"][0].value("cluster", "");
  }
  if (j.contains("route") && j["route"].is_object()) return j["route"].value("cluster_id", "");
  return j.value("cluster_id", fmt::format("?{}", j.dump()));
}

}  // namespace headshift::testing

namespace headshift::testing {

bool LabFixture::EditCluster(const std::string& id, const std::function<void(YAML::Node&)>& edit) {
  YAML::Node cfg = YAML::LoadFile(config_path());
  bool found = false;
  for (auto c : cfg["clusters"]) {
    if (c["id"].as<std::string>() != id) continue;
    edit(c);
    found = true;
  }
  if (!found) return false;
  YAML::Emitter out;
  out << cfg;
  return WriteFileAtomically(config_path(), std::string(out.c_str()) + "\n", 0600).ok();
}

}  // namespace headshift::testing
