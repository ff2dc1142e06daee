// Copier's internals shared by its two halves (copier.cc: the shared layout and the copy record;
// copier_split.cc: the split layout). Not part of the module's interface: include only from those.
#pragma once

#include <chrono>
#include <string>
#include <map>
#include <set>
#include <thread>

#include "migrate/copy_state.h"
#include "migrate/headshift_tables.h"
#include "migrate/id_allocator.h"
#include "migrate/pg_copy.h"
#include "migrate/pg_tx.h"
#include "migrate/target_collisions.h"

#include "migrate/copier.h"

namespace headshift::migrate::copier_internal {

// Advisory transaction lock serialising copies into one database (id planning + COPY).
inline constexpr const char* kCopyTargetLock = "7228116712049151002";

inline double MsSince(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

inline std::string Q(PgConn& c, const std::string& s) { return c.QuoteLiteral(s); }

inline Status Progress(const CopyOptions& opts, const CopyProgress& p) {
  if (!opts.on_progress) return Status::Ok();
  return opts.on_progress(p);
}

// Joins a thread on every way out of a scope.
struct Joiner {
  std::thread& t;
  ~Joiner() {
    if (t.joinable()) t.join();
  }
};

// Runs the collision check (target_collisions.h) inside the copy's transactions, before its first write:
// Refused naming every clash when a device registered on the target took one of the tenant's values
// after preflight. The caller's transaction rolls back, so nothing is committed. `same_table`: both sides
// are one database (shared layout), so the tenant's own rows are left out on the target side.
inline CollisionSides CopySides(const MoveRef& ref, PgConn& values, const TenantSchema& values_schema,
                         const TenantSelector& tenant, PgConn& target, const TenantSchema& target_schema,
                         bool same_table) {
  CollisionSides sides;
  sides.values_conn = &values;
  sides.values_schema = &values_schema;
  sides.values_selector = tenant;
  sides.target_conn = &target;
  sides.target_schema = &target_schema;
  sides.target_cluster = ref.to;
  if (same_table) sides.own_on_target = tenant;
  return sides;
}

inline Status RefuseCollisions(const MoveContext& ctx, const MoveRef& ref, PgConn& values, const TenantSchema& values_schema,
                        const TenantSelector& tenant, PgConn& target, const TenantSchema& target_schema,
                        bool same_table) {
  TargetCollisions check(ctx, CopySides(ref, values, values_schema, tenant, target, target_schema, same_table));
  auto found = check.CheckAll();
  if (!found.ok()) return found.status().WithContext("re-checking values on cluster " + ref.to);
  return CollisionsRefused("values of tenant " + ref.tenant + " are already used on cluster " + ref.to +
                               " (taken since preflight?); nothing was committed:",
                           *found);
}

// "SELECT 'users', count(*), sum(...)::text FROM ... UNION ALL ..." result -> table -> (count, sum).
using Sums = std::map<std::string, std::pair<int64_t, std::string>>;

}  // namespace headshift::migrate::copier_internal
