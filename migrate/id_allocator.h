// AllocateTargetIds: decides the target ids of rows about to be written into a table of the target
// database. Source ids that are free on the target are kept; taken ones get fresh values from the
// table's sequence (or max+1 without one). First the sequence is advanced past both the largest target
// id and the largest incoming id, so neither the fresh ids nor later inserts by headscale can collide
// with a kept id. Sequence changes are not transactional: they survive a rollback (harmless gaps).
//
// REQUIRES: called inside the target transaction that will write the rows, after taking the copy lock.
#pragma once

#include <cstdint>
#include <vector>

#include "common/pg.h"
#include "migrate/row_sql.h"
#include "migrate/tenant_schema.h"

namespace headshift::migrate {

// The ids among `source_ids` that already exist in the target table (read-only: one index range scan
// over [min, max], intersected here — cheaper than shipping thousands of ids to the server).
StatusOr<std::vector<int64_t>> TakenTargetIds(PgConn& target, const RowSql& sql, const TenantTable& table,
                                              const std::vector<int64_t>& source_ids);

// Returns old->new pairs for the ids that had to change.
StatusOr<IdMap> AllocateTargetIds(PgConn& target, const RowSql& sql, const TenantTable& table,
                                  const std::vector<int64_t>& source_ids);

}  // namespace headshift::migrate
