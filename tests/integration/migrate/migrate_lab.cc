#include "tests/integration/migrate/migrate_lab.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>

#include "sandbox/headscale_schema.h"
#include "tests/fixtures/pg_server.h"

namespace headshift::migrate::testing {

std::unique_ptr<PgConn> Lab::Connect(const std::string& cluster) const {
  auto c = PgConn::Connect(dsn.at(cluster));
  EXPECT_TRUE(c.ok()) << c.status().ToString();
  return c.ok() ? std::move(*c) : nullptr;
}

void Lab::Exec(const std::string& cluster, const std::string& sql) const {
  auto c = Connect(cluster);
  ASSERT_TRUE(c);
  Status st = c->ExecScript(sql);
  ASSERT_TRUE(st.ok()) << sql << ": " << st.ToString();
}

std::string Lab::Scalar(const std::string& cluster, const std::string& sql) const {
  auto c = Connect(cluster);
  if (!c) return "";
  auto r = c->Exec(sql);
  EXPECT_TRUE(r.ok()) << sql << ": " << r.status().ToString();
  if (!r.ok() || r->rows() == 0) return "";
  return r->IsNull(0, 0) ? "NULL" : r->Get(0, 0);
}

std::map<std::string, std::string> Lab::Checksums(const std::string& cluster) const {
  std::map<std::string, std::string> out;
  auto c = Connect(cluster);
  if (!c) return out;
  auto tables = c->Exec(
      "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename NOT LIKE 'headshift\\_%' ORDER BY 1");
  EXPECT_TRUE(tables.ok());
  if (!tables.ok()) return out;
  for (int i = 0; i < tables->rows(); ++i) {
    std::string t = tables->Get(i, 0);
    std::string q = c->QuoteIdent(t);
    EXPECT_TRUE(c->ExecScript("SET TimeZone = 'UTC'").ok());
    auto r = c->Exec("SELECT count(*) || ':' || COALESCE(md5(string_agg(x::text, '|' ORDER BY x::text)), '') FROM " + q + " x");
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    if (r.ok()) out[t] = r->Get(0, 0);
  }
  return out;
}

std::map<std::string, std::string> Lab::AllChecksums() const {
  std::map<std::string, std::string> out;
  std::map<std::string, bool> done;
  for (const auto& [cluster, d] : dsn) {
    if (done[d]) continue;
    done[d] = true;
    for (const auto& [t, sum] : Checksums(cluster)) out[(split ? cluster : "shared") + "/" + t] = sum;
  }
  return out;
}

sandbox::SeedTenant Tenant(const std::string& name, const std::string& cluster, int devices, int ip_offset,
                           const std::string& public_base) {
  sandbox::SeedTenant t;
  t.name = name;
  t.cluster_id = cluster;
  t.devices = devices;
  t.ip_offset = ip_offset;
  t.public_base = public_base;
  t.public_addresses = 3;
  t.pre_auth_keys = 2;
  return t;
}

Lab MakeLab(const std::string& name, const LabOptions& opts, const std::vector<sandbox::SeedTenant>& tenants) {
  Lab lab;
  lab.name = name;
  lab.split = opts.split;
  lab.text_ids = opts.text_ids;
  lab.stock = opts.stock;
  EXPECT_TRUE(!opts.stock || opts.split) << "a stock headscale lab has one database per cluster";
  sandbox::SchemaOptions so{opts.text_ids ? sandbox::ClusterIdType::kText : sandbox::ClusterIdType::kBigint,
                            !opts.stock, opts.acl_policies};
  static int counter = 0;
  std::string prefix = "hs_mig_" + std::to_string(getpid()) + "_" + std::to_string(++counter) + "_";
  if (!opts.split) {
    std::string dsn = headshift::testing::CreateTestDatabase(prefix + name);
    for (const auto& c : opts.clusters) lab.dsn[c] = dsn;
  } else {
    for (const auto& c : opts.clusters) lab.dsn[c] = headshift::testing::CreateTestDatabase(prefix + name + "_c" + c);
  }
  std::map<std::string, bool> created;
  for (const auto& c : opts.clusters) {
    if (created[lab.dsn[c]]) continue;
    created[lab.dsn[c]] = true;
    auto conn = lab.Connect(c);
    EXPECT_TRUE(sandbox::CreateHeadscaleSchema(*conn, so).ok());
    auto it = opts.id_start.find(c);
    if (opts.split && it != opts.id_start.end()) {
      std::string v = std::to_string(it->second);
      EXPECT_TRUE(conn->ExecScript("ALTER SEQUENCE users_id_seq RESTART " + v + "; ALTER SEQUENCE nodes_id_seq RESTART " +
                                   v + "; ALTER SEQUENCE pre_auth_keys_id_seq RESTART " + v)
                      .ok());
    }
  }
  // Seed each database with its clusters' tenants.
  std::map<std::string, sandbox::SeedSpec> specs;
  for (const auto& t : tenants) {
    auto& spec = specs[lab.dsn.at(t.cluster_id)];
    spec.cluster_id_is_text = opts.text_ids;
    spec.with_cluster_id = !opts.stock;
    spec.tenants.push_back(t);
  }
  for (auto& [d, spec] : specs) {
    auto conn = PgConn::Connect(d);
    EXPECT_TRUE(conn.ok());
    Status st = sandbox::SeedTenants(**conn, spec);
    EXPECT_TRUE(st.ok()) << st.ToString();
  }
  // The config, with DSNs in environment variables.
  Config& cfg = lab.config;
  cfg.database.layout = opts.split ? DbLayout::kSplit : DbLayout::kShared;
  if (opts.stock) cfg.database.cluster_column = kNoClusterColumn;
  for (const auto& c : opts.clusters) {
    std::string env = "HS_MIGRATE_TEST_DSN_" + std::to_string(counter) + "_" + c;
    setenv(env.c_str(), lab.dsn[c].c_str(), 1);
    ClusterConfig cc;
    cc.id = c;
    cc.control_url = "http://127.0.0.1:1/";
    cc.backend = "be" + c;
    if (opts.split) cc.dsn.env = env;
    else cfg.database.dsn.env = env;
    cfg.clusters.push_back(cc);
  }
  cfg.journal.location = opts.split && cfg.database.dsn.empty() ? "target" : opts.journal_location;
  return lab;
}

std::unique_ptr<TenantMover> OpenMover(const Lab& lab) {
  auto m = TenantMover::Open(lab.config);
  EXPECT_TRUE(m.ok()) << m.status().ToString();
  return m.ok() ? std::move(*m) : nullptr;
}

}  // namespace headshift::migrate::testing
