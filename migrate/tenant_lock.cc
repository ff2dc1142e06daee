#include "migrate/tenant_lock.h"

#include <algorithm>
#include <map>

namespace headshift::migrate {
namespace {

constexpr const char* kAppPrefix = "headshift:";

}  // namespace

int64_t TenantLock::Key(const std::string& tenant) {
  uint64_t h = 1469598103934665603ULL;
  for (unsigned char ch : "headshift-tenant:" + tenant) {
    h ^= ch;
    h *= 1099511628211ULL;
  }
  return static_cast<int64_t>(h);
}

StatusOr<std::unique_ptr<TenantLock>> TenantLock::Acquire(ClusterDatabases& dbs, const std::string& tenant,
                                                          const std::string& from, const std::string& to,
                                                          const std::string& migration_id) {
  HS_RETURN_IF_ERROR(dbs.CheckKnown(from, "source"));
  HS_RETURN_IF_ERROR(dbs.CheckKnown(to, "target"));
  std::unique_ptr<TenantLock> lock(new TenantLock());
  lock->tenant_ = tenant;
  lock->migration_id_ = migration_id;
  // Databases in a fixed order (by key), each once.
  std::map<std::string, std::string> dbs_by_key = {{dbs.DatabaseKey(from), from}, {dbs.DatabaseKey(to), to}};
  const std::string key = std::to_string(Key(tenant));
  const uint64_t ukey = static_cast<uint64_t>(Key(tenant));
  for (const auto& [dbkey, cluster] : dbs_by_key) {
    auto c = dbs.Dedicated(cluster);
    if (!c.ok()) return c.status().WithContext("taking the tenant lock");
    PgConn& conn = **c;
    auto app = conn.Exec("SELECT set_config('application_name', $1, false)", {kAppPrefix + migration_id});
    if (!app.ok()) return app.status().WithContext("taking the tenant lock");
    auto r = conn.Exec("SELECT pg_try_advisory_lock($1::bigint)", {key});
    if (!r.ok()) return r.status().WithContext("taking the tenant lock");
    if (r->Get(0, 0) != "t") {
      // Who holds it? Its session's application_name names the migration.
      auto who = conn.Exec(
          "SELECT a.application_name, a.pid FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
          "WHERE l.locktype = 'advisory' AND l.granted AND l.database = (SELECT oid FROM pg_database "
          "WHERE datname = current_database()) AND l.classid = $1::oid AND l.objid = $2::oid AND l.objsubid = 1",
          {std::to_string(ukey >> 32), std::to_string(ukey & 0xffffffffULL)});
      std::string holder = "another session";
      if (who.ok() && who->rows() > 0) {
        std::string app_name = who->Get(0, 0);
        holder = app_name.rfind(kAppPrefix, 0) == 0
                     ? "migration " + app_name.substr(std::string(kAppPrefix).size())
                     : "session pid " + who->Get(0, 1) + " (" + app_name + ")";
      }
      return Status::Refused("tenant " + tenant + " is already being migrated by " + holder + " (" + dbkey + ")",
                             "wait for it to finish (`headshift status`), or resume that migration instead");
    }
    lock->conns_.push_back(std::move(*c));
  }
  return lock;
}

TenantLock::~TenantLock() { Release(); }

void TenantLock::Release() {
  for (auto& c : conns_) {
    if (c && c->Healthy()) (void)c->Exec("SELECT pg_advisory_unlock($1::bigint)", {std::to_string(Key(tenant_))});
  }
  conns_.clear();
}

bool TenantLock::Held() {
  if (conns_.empty()) return false;
  for (auto& c : conns_) {
    // Healthy() only reflects the last operation: probe the connection.
    if (!c->Healthy() || !c->Exec("SELECT 1").ok()) return false;
  }
  return true;
}

}  // namespace headshift::migrate
