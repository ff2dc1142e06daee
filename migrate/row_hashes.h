// Per-row hash reads shared by verify, catch-up, retire and rollback: the tenant's rows as they are now
// on the source (ids mapped, cluster normalised), the recorded rows as they are now on the target, and
// tenant rows on the target that no copy wrote.
//
// Thread-safety: stateless functions over the connections given.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "common/pg.h"
#include "migrate/row_sql.h"

namespace headshift::migrate {

// source id -> hash of the mapped row, for the tenant's rows of `t` now.
StatusOr<std::map<int64_t, int64_t>> SourceHashes(PgConn& source, const RowSql& sql, const TenantTable& t,
                                                  const TenantSelector& sel, const IdMaps& maps,
                                                  const std::string& to_cluster);
// target id -> hash, for the rows of `t` recorded by `migration_id` that still exist on the target.
StatusOr<std::map<int64_t, int64_t>> TargetHashes(PgConn& target, const RowSql& sql, const TenantTable& t,
                                                  const std::string& migration_id);
// Ids of the tenant's rows of `t` on the target that `migration_id` did not record.
StatusOr<std::vector<int64_t>> TargetExtras(PgConn& target, const RowSql& sql, const TenantTable& t,
                                            const TenantSelector& sel, const std::string& migration_id);

}  // namespace headshift::migrate
