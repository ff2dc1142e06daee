// TargetCollisions: the values of a tenant's rows that the target cluster already uses. Two kinds of
// Conflict (move_plan.h):
//  - "unique_index": a unique index of the target table would be violated by the tenant's rows as they
//    will be there (cluster column rewritten; columns the copy remaps — keys — are skipped);
//  - "collision": a profile unique_in_cluster column (tailnet IPs, given_name, node_key, machine_key,
//    pre-auth key prefix) holds a value another row of the target cluster holds. headscale keeps these
//    unique per cluster in memory only (IP allocator, NodeStore); the database does not enforce them, so
//    nothing but this check stops a duplicate.
// Strictly read-only (SELECTs only). Plan/preflight, the copy (inside its transactions, after its locks,
// before its first write) and the orchestrator (after the target reloaded) run the same check.
//
// A check compares two sides given in CollisionSides:
//  - the tenant's rows, read on the `values` connection (the source in plan and copy, the target after
//    a copy), found by `values_selector`;
//  - the rows of the target cluster on the `target` connection, minus the tenant's own rows there
//    (`own_on_target`: needed when both sides are one table — the shared layout, or after a copy).
// It sees whatever snapshot the connections' open transactions see.
//
// Thread-safety: not thread-safe (uses the connections given; they must outlive the object).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "common/pg.h"
#include "migrate/move_context.h"
#include "migrate/move_plan.h"
#include "migrate/row_sql.h"
#include "migrate/tenant_schema.h"

namespace headshift::migrate {

struct CollisionSides {
  // Where the tenant's values are read (REQUIRES: non-null).
  PgConn* values_conn = nullptr;
  const TenantSchema* values_schema = nullptr;
  TenantSelector values_selector;
  // Where they must not clash (may be the same connection/schema as the values side).
  PgConn* target_conn = nullptr;
  const TenantSchema* target_schema = nullptr;
  std::string target_cluster;
  // The tenant's own rows on the target side, excluded from the comparison (nullopt: none there).
  std::optional<TenantSelector> own_on_target;
  // Skip unique indexes of the root table (plan: the tenant is already reported as tenant_on_target).
  bool skip_root_unique_indexes = false;
  // How messages name the tenant's row ids: "... (source id 7, target id 12)".
  std::string own_id_label = "source id";
};

class TargetCollisions {
 public:
  TargetCollisions(const MoveContext& ctx, CollisionSides sides);

  // Appends the conflicts of tenant table `t` (a table of sides.values_schema) to *out: its unique
  // indexes first, then its unique_in_cluster columns (a column already reported through a one-column
  // unique index is not reported twice). Tables missing on the target side are skipped (the schema
  // checks report them). Failed when a query fails.
  Status CheckTable(const TenantTable& t, std::vector<Conflict>* out);
  // Every tenant table, foreign-key order.
  StatusOr<std::vector<Conflict>> CheckAll();

  // The copy's fast path: every key CheckAll compares (unique index keys and unique_in_cluster values,
  // a superset of what CheckAll reports), as one statement per side, so that both sides can run at once
  // on their own connections. Each statement returns one row with one bytea column per key: the 8-byte
  // big-endian hashtextextended(key, 0) of every value (NULL when there is none). A key whose hashes
  // never meet (HashesMeet false) cannot clash; when some do, CheckAll gives the exact answer.
  // Both strings are empty when there is nothing to compare. Runs no query (the statements are built with
  // the connections' quoting, so call it before handing the connections to other threads).
  struct HashQueries {
    std::string values_sql;  // run on sides.values_conn
    std::string target_sql;  // run on sides.target_conn
  };
  HashQueries BuildHashQueries();
  // True when a hash of a key appears in both results of HashQueries, or when the hashes cannot be read
  // (REQUIRES bytea_output = hex, as ClusterDatabases sets; otherwise the exact check decides). Failed
  // when the shapes do not match.
  static StatusOr<bool> HashesMeet(const PgResult& values, const PgResult& target);

 private:
  // Whether CheckUniqueIndexes compares index `u` of target table `tt` for tenant table `t`.
  bool ComparesIndex(const TenantTable& t, const UniqueIndex& u) const;
  // The SQL of unique index `u` on both sides, shared by the exact and the hash check:
  //   values_rows  the tenant's rows of `t` as they will be on the target, filtered by the index
  //                predicate and non-NULL key columns: "(SELECT ... FROM t WHERE member) s WHERE ..."
  //   key          the index key as one text value, "jsonb_build_array(cols)::text"
  //   predicate    the index predicate ("TRUE" when it has none)
  struct IndexSql {
    std::string values_rows, key, predicate;
  };
  IndexSql IndexKeySql(const TenantTable& t, const UniqueIndex& u, const std::string& member) const;
  Status CheckUniqueIndexes(const TenantTable& t, const TenantTable& tt, std::vector<Conflict>* out,
                            std::vector<std::string>* reported);
  Status CheckUniqueInCluster(const TenantTable& t, const TenantTable& tt, const std::vector<std::string>& reported,
                              std::vector<Conflict>* out);
  // "t.pk NOT IN (the tenant's own rows)" or "TRUE".
  std::string NotOwn(const TenantTable& tt) const;

  const MoveContext& ctx_;
  CollisionSides sides_;
  RowSql vsql_;
  RowSql tsql_;
};

// Refused (exit 3) naming every conflict (table, column, values) and its fix, prefixed by `what`; OK when
// `conflicts` is empty.
Status CollisionsRefused(const std::string& what, const std::vector<Conflict>& conflicts);

}  // namespace headshift::migrate
