// CatchUp: applies to the target the writes that reached the source for this tenant after the copy (or
// the previous catch-up): changed rows (endpoints, last_seen, host_info, ...), new rows (a device
// registered during the cut; ids kept or remapped like the copy, foreign keys mapped), deleted rows.
// Change detection compares each side's row hash with the hash recorded at the last sync:
//   source changed, target not      -> applied
//   target changed, source not      -> kept (the target is authoritative once serving), counted
//   both changed (to different rows) -> a conflict, reported with both versions, never silently dropped;
//                                      ConflictPolicy decides: report (default, nothing applied),
//                                      source wins, or target wins (the source change is discarded)
// Split: one REPEATABLE READ snapshot of the source, one target transaction (rows locked FOR UPDATE,
// staged with binary COPY into a temp table, then UPDATE/INSERT/DELETE), the record updated in the same
// transaction. Applied rows must hash equal to their source rows or nothing is committed. Re-running
// converges (what was applied is no longer a difference).
// Shared: rows of the tenant written on the source cluster after the move are moved too; the recorded
// hashes are refreshed. Conflicts cannot happen (one copy of each row).
//
// Thread-safety: not thread-safe.
#pragma once

#include "migrate/move_context.h"
#include "migrate/reports.h"

namespace headshift::migrate {

class CatchUp {
 public:
  explicit CatchUp(MoveContext& ctx) : ctx_(ctx) {}

  // BadInput when no copy is recorded (or it was retired).
  StatusOr<CatchUpReport> Run(const MoveRef& ref, ConflictPolicy policy = ConflictPolicy::kReport);

 private:
  Status RunSplit(const MoveRef& ref, ConflictPolicy policy, CatchUpReport& rep);
  Status RunShared(const MoveRef& ref, CatchUpReport& rep);
  MoveContext& ctx_;
};

}  // namespace headshift::migrate
