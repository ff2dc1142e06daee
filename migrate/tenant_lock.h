// TenantLock: one migration per tenant at a time. A PostgreSQL session-level advisory lock keyed by the
// tenant name, taken with pg_try_advisory_lock on a dedicated connection in every database the
// migration touches (source and target; one in the shared layout), and held until the TenantLock is
// destroyed or its connections die (a crashed process releases it automatically). The connection's
// application_name carries the migration id, so a refused second migration is told which one runs.
//
// Thread-safety: a TenantLock is owned by one thread; distinct locks are independent.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "migrate/cluster_databases.h"

namespace headshift::migrate {

class TenantLock {
 public:
  // Takes the tenant's lock in the databases of `from` and `to`. Refused (exit 3) naming the running
  // migration's id when another session holds it; Failed if a database cannot be reached.
  static StatusOr<std::unique_ptr<TenantLock>> Acquire(ClusterDatabases& dbs, const std::string& tenant,
                                                       const std::string& from, const std::string& to,
                                                       const std::string& migration_id);
  ~TenantLock();
  TenantLock(const TenantLock&) = delete;
  TenantLock& operator=(const TenantLock&) = delete;

  // Unlocks and closes the connections (also done by the destructor).
  void Release();
  // Whether every lock connection is still alive (a dropped connection means the lock is lost).
  bool Held();
  const std::string& tenant() const { return tenant_; }
  const std::string& migration_id() const { return migration_id_; }

  // The 64-bit advisory key of a tenant (FNV-1a of "headshift-tenant:" + name).
  static int64_t Key(const std::string& tenant);

 private:
  TenantLock() = default;
  std::string tenant_;
  std::string migration_id_;
  std::vector<std::unique_ptr<PgConn>> conns_;
};

}  // namespace headshift::migrate
