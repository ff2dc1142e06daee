// Benchmark: copy one tenant with 10,000 devices out of 50,000 between two split-layout databases.
//   headshift copy          TenantMover::Copy (binary COPY streamed source -> target, one target tx,
//                           ids/FKs mapped, sequences advanced, per-row hashes recorded, checksums compared)
//   headshift copy+verify   the same plus TenantMover::Verify (both sides re-checksummed in SQL)
//   anchor                  bench/migrate/anchor.sh: psql \copy TO file, sed cluster_id, psql \copy FROM
// Rounds are interleaved (anchor, copy, copy+verify, ...) on one throwaway PostgreSQL; each variant
// writes into its own identical target database, which is reset (untimed) after each round. Prints the
// median of each and the ratios anchor / headshift. Also checks that the anchor and headshift wrote the
// same rows.
//
// Usage: bench_migrate_copy [ROUNDS=5] [TENANT_DEVICES=10000] [TOTAL_DEVICES=50000]
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "common/logging.h"
#include "common/pg.h"
#include "common/pg_server.h"
#include "common/subprocess.h"
#include "migrate/headshift_tables.h"
#include "migrate/tenant_mover.h"
#include "sandbox/headscale_schema.h"
#include "sandbox/seed.h"

namespace hs = headshift;
using Clock = std::chrono::steady_clock;

namespace {

void Check(const hs::Status& st, const char* what) {
  if (!st.ok()) {
    fprintf(stderr, "%s: %s\n", what, st.ToString().c_str());
    std::exit(1);
  }
}

std::unique_ptr<hs::PgConn> Connect(const std::string& dsn) {
  auto c = hs::PgConn::Connect(dsn);
  Check(c.status(), "connect");
  return std::move(*c);
}

double Ms(Clock::time_point t0) { return std::chrono::duration<double, std::milli>(Clock::now() - t0).count(); }

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

// The tenant's rows on a target, as text, for comparing what two variants wrote.
std::string TenantFingerprint(hs::PgConn& c, const std::string& tenant) {
  auto r = c.Exec(
      "SELECT md5(string_agg(x, '|' ORDER BY x)) FROM ("
      " SELECT 'u' || u::text AS x FROM users u WHERE name = $1"
      " UNION ALL SELECT 'k' || k::text FROM pre_auth_keys k WHERE user_id IN (SELECT id FROM users WHERE name = $1)"
      " UNION ALL SELECT 'n' || n::text FROM nodes n WHERE user_id IN (SELECT id FROM users WHERE name = $1)) s",
      {tenant});
  Check(r.status(), "fingerprint");
  return r->Get(0, 0);
}

// Removes the tenant from a target database (untimed reset between rounds).
void ResetTarget(const std::string& dsn, const std::string& tenant) {
  auto c = Connect(dsn);
  Check(c->ExecScript("SET TimeZone = 'UTC'"), "tz");
  Check(c->ExecScript("BEGIN; DELETE FROM nodes WHERE user_id IN (SELECT id FROM users WHERE name = " +
                      c->QuoteLiteral(tenant) + "); DELETE FROM pre_auth_keys WHERE user_id IN (SELECT id FROM users "
                      "WHERE name = " + c->QuoteLiteral(tenant) + "); DELETE FROM users WHERE name = " +
                      c->QuoteLiteral(tenant) + "; DELETE FROM headshift_copy_rows WHERE TRUE; "
                      "DELETE FROM headshift_copies WHERE TRUE; COMMIT"),
        "reset");
  for (const char* t : {"users", "pre_auth_keys", "nodes", "headshift_copy_rows", "headshift_copies"}) {
    Check(c->ExecScript(std::string("VACUUM ANALYZE ") + t), "vacuum");
  }
}

}  // namespace

int main(int argc, char** argv) {
  int rounds = argc > 1 ? std::atoi(argv[1]) : 5;
  int tenant_devices = argc > 2 ? std::atoi(argv[2]) : 10000;
  int total_devices = argc > 3 ? std::atoi(argv[3]) : 50000;
  (void)hs::InitLogging("warn");
  hs::PgServer server;
  Check(server.Start(), "start postgres");
  const std::string tenant = "bigtenant";

  // Source (cluster 3): the tenant plus others up to total_devices. Targets (cluster 4): other tenants with
  // disjoint ids and IPs, so the anchor (which keeps ids) can load into them.
  std::vector<std::string> targets = {"tgt_headshift_copy", "tgt_headshift_verify", "tgt_anchor"};
  auto src_dsn = server.CreateDatabase("src");
  Check(src_dsn.status(), "create db");
  {
    auto c = Connect(*src_dsn);
    Check(hs::sandbox::CreateHeadscaleSchema(*c, {}), "schema");
    hs::sandbox::SeedSpec spec;
    spec.tenants.push_back({tenant, "3", tenant_devices, "198.18.0.1", 64, "", 0, 0, 4});
    int others = std::max(0, total_devices - tenant_devices);
    for (int i = 0; others > 0; ++i) {
      int n = std::min(others, 10000);
      spec.tenants.push_back({"other" + std::to_string(i), "3", n, "198.18.100.1", 16, "", 0, 20000 + i * 10000, 2});
      others -= n;
    }
    Check(hs::sandbox::SeedTenants(*c, spec), "seed source");
    Check(c->ExecScript("VACUUM ANALYZE"), "analyze");
  }
  std::vector<std::string> tgt_dsn;
  for (const auto& name : targets) {
    auto d = server.CreateDatabase(name);
    Check(d.status(), "create db");
    tgt_dsn.push_back(*d);
    auto c = Connect(*d);
    Check(hs::sandbox::CreateHeadscaleSchema(*c, {}), "schema");
    Check(c->ExecScript("ALTER SEQUENCE users_id_seq RESTART 10000000; ALTER SEQUENCE nodes_id_seq RESTART 10000000; "
                        "ALTER SEQUENCE pre_auth_keys_id_seq RESTART 10000000"),
          "sequences");
    hs::sandbox::SeedSpec spec;
    spec.tenants.push_back({"resident0", "4", 10000, "198.18.200.1", 16, "", 0, 100000, 2});
    spec.tenants.push_back({"resident1", "4", 10000, "198.18.201.1", 16, "", 0, 110000, 2});
    Check(hs::sandbox::SeedTenants(*c, spec), "seed target");
    Check(hs::migrate::EnsureHeadshiftTables(*c), "headshift tables");
    Check(c->ExecScript("VACUUM ANALYZE"), "analyze");
  }
  // One config per target database (cluster 3 = source, cluster 4 = that target).
  auto config_for = [&](int target) {
    hs::Config cfg;
    cfg.database.layout = hs::DbLayout::kSplit;
    for (const auto& [id, dsn] : {std::pair<std::string, std::string>{"3", *src_dsn}, {"4", tgt_dsn[target]}}) {
      std::string env = "HS_BENCH_DSN_" + id + "_" + std::to_string(target);
      setenv(env.c_str(), dsn.c_str(), 1);
      hs::ClusterConfig cc;
      cc.id = id;
      cc.control_url = "http://127.0.0.1:1/";
      cc.backend = "be" + id;
      cc.dsn.env = env;
      cfg.clusters.push_back(cc);
    }
    cfg.journal.location = "target";
    return cfg;
  };
  char tmpl[] = "/tmp/hs-bench-migrate-XXXXXX";
  std::string workdir = mkdtemp(tmpl);

  std::vector<double> t_anchor, t_copy, t_verify, t_verify_only;
  std::string fp_copy, fp_verify, fp_anchor;
  hs::migrate::CopyReport last_copy;
  for (int round = 0; round < rounds; ++round) {
    // Anchor.
    {
      auto t0 = Clock::now();
      auto r = hs::RunArgv({"bash", HEADSHIFT_MIGRATE_ANCHOR, *src_dsn, tgt_dsn[2], tenant, "3", "4", workdir}, 600000);
      double ms = Ms(t0);
      Check(r.status(), "anchor");
      if (r->exit_code != 0) {
        fprintf(stderr, "anchor failed: %s\n", r->output.c_str());
        return 1;
      }
      t_anchor.push_back(ms);
      auto c = Connect(tgt_dsn[2]);
      Check(c->ExecScript("SET TimeZone = 'UTC'"), "tz");
      fp_anchor = TenantFingerprint(*c, tenant);
    }
    // headshift copy (a fresh TenantMover: connecting is part of the cost, as for the CLI).
    {
      std::string id = "m-bench-copy-" + std::to_string(round);
      auto t0 = Clock::now();
      auto mover = hs::migrate::TenantMover::Open(config_for(0));
      Check(mover.status(), "open");
      auto rep = (*mover)->Copy({id, tenant, "3", "4"});
      double ms = Ms(t0);
      Check(rep.status(), "copy");
      t_copy.push_back(ms);
      last_copy = *rep;
      auto c = Connect(tgt_dsn[0]);
      Check(c->ExecScript("SET TimeZone = 'UTC'"), "tz");
      fp_copy = TenantFingerprint(*c, tenant);
    }
    // headshift copy + verify.
    {
      std::string id = "m-bench-verify-" + std::to_string(round);
      auto t0 = Clock::now();
      auto mover = hs::migrate::TenantMover::Open(config_for(1));
      Check(mover.status(), "open");
      hs::migrate::MoveRef ref{id, tenant, "3", "4"};
      auto rep = (*mover)->Copy(ref);
      Check(rep.status(), "copy");
      auto t1 = Clock::now();
      auto v = (*mover)->Verify(ref);
      double ms = Ms(t0);
      Check(v.status(), "verify");
      if (!v->ok) {
        fprintf(stderr, "verify reported mismatches\n");
        return 1;
      }
      t_verify.push_back(ms);
      t_verify_only.push_back(Ms(t1));
      auto c = Connect(tgt_dsn[1]);
      Check(c->ExecScript("SET TimeZone = 'UTC'"), "tz");
      fp_verify = TenantFingerprint(*c, tenant);
    }
    if (fp_copy != fp_anchor || fp_verify != fp_anchor) {
      fprintf(stderr, "round %d: the variants wrote different rows (anchor %s, copy %s, copy+verify %s)\n", round,
              fp_anchor.c_str(), fp_copy.c_str(), fp_verify.c_str());
      return 1;
    }
    printf("round %d: anchor %.1f ms, copy %.1f ms, copy+verify %.1f ms (verify %.1f ms)\n", round, t_anchor.back(),
           t_copy.back(), t_verify.back(), t_verify_only.back());
    fflush(stdout);
    for (const auto& d : tgt_dsn) ResetTarget(d, tenant);
  }
  double a = Median(t_anchor), c = Median(t_copy), cv = Median(t_verify);
  printf("\ntenant %s: %d devices of %d in the source; %d rounds, medians:\n", tenant.c_str(), tenant_devices,
         total_devices, rounds);
  printf("  anchor (psql \\copy TO, sed, \\copy FROM)  %8.1f ms\n", a);
  printf("  headshift copy                           %8.1f ms   anchor/copy        = %.2fx\n", c, a / c);
  printf("  headshift copy+verify                    %8.1f ms   anchor/copy+verify = %.2fx\n", cv, a / cv);
  printf("  (verify alone %.1f ms)\n", Median(t_verify_only));
  printf("  last copy per table:");
  for (const auto& t : last_copy.tables) printf(" %s %lld rows %.1f ms;", t.table.c_str(), (long long)t.rows, t.ms);
  printf("\n  last copy phases:");
  for (const auto& [name, ms] : last_copy.phases_ms) printf(" %s %.1f ms;", name.c_str(), ms);
  printf("\n  anchor and headshift wrote identical tenant rows: yes\n");
  std::filesystem::remove_all(workdir);
  return 0;
}
