// RecordedCopy: how the steps after the copy (verify, catch-up, rollback) open a migration — the tenant
// schema and cached connection of each side, and the copy header recorded for the migration, already
// checked against its tenant and clusters (CheckHeaderMatches: BadInput on a mismatch). What an absent
// or retired copy means differs per step, so that stays with the caller.
//
// Ownership: the schemas and connections stay owned by the MoveContext and its ClusterDatabases; the
// pointers are valid while those live (and until the connection is reopened).
// REQUIRES: ref.from and ref.to are configured clusters (ClusterDatabases::CheckKnown).
// Thread-safety: not thread-safe (uses the context's cached connections).
#pragma once

#include <optional>

#include "migrate/copy_state.h"
#include "migrate/move_context.h"
#include "migrate/reports.h"

namespace headshift::migrate {

// One cluster's database as a step sees it.
struct ClusterSide {
  const TenantSchema* schema = nullptr;
  PgConn* conn = nullptr;
};

struct RecordedCopy {
  ClusterSide source;                // shared layout: the same database as `target`
  ClusterSide target;                // the database the header was read from
  std::optional<CopyHeader> header;  // nullopt: no copy recorded for the migration
};

// Split layout: the schemas of ref.from and ref.to, then both connections (in that order, so errors are
// reported in the same order by every step), then the header recorded on the target.
// Shared layout: the one database's schema and connection (as ref.from) fill both sides.
StatusOr<RecordedCopy> OpenRecordedCopy(MoveContext& ctx, const MoveRef& ref);

// OpenRecordedCopy for the steps that need the copy (verify, catch-up): BadInput "no copy recorded for
// migration <id>" (split: "... on cluster <to>"), hint "run the copy step first", when none is; so
// `header` is set whenever this succeeds.
StatusOr<RecordedCopy> OpenRequiredCopy(MoveContext& ctx, const MoveRef& ref);

// Only ref.to's database (split rollback: it must work while the source is unreachable); `source` is
// left empty.
StatusOr<RecordedCopy> OpenRecordedTarget(MoveContext& ctx, const MoveRef& ref);

}  // namespace headshift::migrate
