// Test lab for migrate/: headscale-shaped databases on the shared PostgreSQL fixture, in the shared
// layout (one database, clusters "3" and "4") or the split layout (one database per cluster), seeded by
// sandbox/seed.h, plus a Config pointing at them (DSNs through environment variables, as in production).
// Checksums() fingerprints a whole database independently of migrate/ (md5 of each table's sorted rows).
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/config.h"
#include "common/pg.h"
#include "migrate/tenant_mover.h"
#include "sandbox/seed.h"

namespace headshift::migrate::testing {

struct Lab {
  std::string name;
  bool split = false;
  bool text_ids = false;
  bool stock = false;  // no cluster column (LabOptions::stock)
  std::map<std::string, std::string> dsn;  // cluster id -> DSN (shared: the same for all)
  Config config;

  // A fresh connection to `cluster`'s database.
  std::unique_ptr<PgConn> Connect(const std::string& cluster) const;
  // Runs SQL on `cluster`'s database (fails the test on error).
  void Exec(const std::string& cluster, const std::string& sql) const;
  std::string Scalar(const std::string& cluster, const std::string& sql) const;
  // table -> "count:md5" for every table of the database (headshift_* tables excluded).
  std::map<std::string, std::string> Checksums(const std::string& cluster) const;
  // Checksums of every database of the lab, keyed "cluster/table" (shared: one database).
  std::map<std::string, std::string> AllChecksums() const;
};

struct LabOptions {
  bool split = false;
  bool text_ids = false;
  std::vector<std::string> clusters = {"3", "4"};
  // Split only: first id of each table's sequence per cluster (e.g. {"4", 100000} keeps ids disjoint).
  std::map<std::string, int64_t> id_start;
  std::string journal_location = "shared";  // split without a shared database forces "target"
  // Stock headscale v0.29.3 (split only): no cluster column in the schema, `database.cluster_column: none`.
  bool stock = false;
  // The cluster_id fork's per-user policy table acl_policies (sandbox SchemaOptions::with_acl_policies).
  bool acl_policies = false;
};

// Creates the databases (named after `name`), the schema, and seeds `tenants` (each into the database of
// its cluster_id).
Lab MakeLab(const std::string& name, const LabOptions& opts, const std::vector<sandbox::SeedTenant>& tenants);

// A SeedTenant with sensible defaults.
sandbox::SeedTenant Tenant(const std::string& name, const std::string& cluster, int devices, int ip_offset,
                           const std::string& public_base = "198.18.0.1");

// TenantMover::Open(lab.config); fails the test and returns nullptr when it does not open.
std::unique_ptr<TenantMover> OpenMover(const Lab& lab);

}  // namespace headshift::migrate::testing

namespace headshift::migrate {

// The tests of migrate/ live in headshift::migrate, where `testing` is this lab's namespace (gtest's is
// ::testing): its names, declared once here for every test that includes the lab.
using testing::Lab;
using testing::LabOptions;
using testing::MakeLab;
using testing::OpenMover;
using testing::Tenant;

}  // namespace headshift::migrate
