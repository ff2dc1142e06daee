// The tables headshift keeps in PostgreSQL, next to headscale's (all named headshift_*, ignored by
// schema discovery):
//   headshift_journal     one row per migration step (and one `migration` row per migration)
//   headshift_clusters    per-cluster flags (cordon) used by drain/rebalance
//   headshift_copies      one row per copy: tenant, clusters, layout, report, retire marks
//   headshift_copy_rows   per copied row: source id, target id, row hash at the last sync
// The copy tables live in the database that received the copy (the target's in split, the shared one
// otherwise) and are written in the same transaction as the copy, so a crash never separates them.
#pragma once

#include "common/pg.h"
#include "common/status.h"

namespace headshift::migrate {

// CREATE TABLE IF NOT EXISTS for all of them (serialised with an advisory transaction lock, so two
// processes creating them at once do not collide). Writes: call only from steps that may write.
Status EnsureHeadshiftTables(PgConn& conn);

// Whether `table` (e.g. "headshift_copies") exists in the connection's current schema. Read-only.
StatusOr<bool> TableExists(PgConn& conn, const std::string& table);

}  // namespace headshift::migrate
