// Retirer: the two ways a migration ends on the data side.
//
// Retire (split): removes the tenant's rows from the source database, children first, in one source
// transaction — optionally copying them first into schema `headshift_archive` (one table per tenant
// table, same columns plus headshift_migration_id and headshift_archived_at). Source changes that were
// not caught up are refused (Refused) unless archive is set, which keeps them. The copy record is marked
// retiring before and retired after, so a crash in between converges on re-run. Shared layout: the rows
// already moved; Retire only closes the record. After Retire, Rollback is refused.
//
// Rollback: split: deletes the tenant's rows from the target (the recorded copy plus any tenant rows
// written there since) in one target transaction; the source is untouched, so every table's checksum is
// back to what it was (sequences stay advanced). Target-side changes since the copy would be lost:
// NeedsOperator unless RollbackOptions::discard_target_changes. Shared: moves every row of the tenant
// back to the source cluster in one transaction (content kept). Both delete the copy record; with no
// record, Rollback is a no-op (nothing_to_do), so it is idempotent.
//
// Thread-safety: not thread-safe.
#pragma once

#include "migrate/move_context.h"
#include "migrate/reports.h"

namespace headshift::migrate {

class Retirer {
 public:
  explicit Retirer(MoveContext& ctx) : ctx_(ctx) {}

  StatusOr<RetireReport> Retire(const MoveRef& ref, bool archive);
  StatusOr<RollbackReport> Rollback(const MoveRef& ref, const RollbackOptions& opts);

  static constexpr const char* kArchiveSchema = "headshift_archive";

 private:
  StatusOr<RollbackReport> RollbackShared(const MoveRef& ref);
  StatusOr<RollbackReport> RollbackSplit(const MoveRef& ref, const RollbackOptions& opts);
  MoveContext& ctx_;
};

}  // namespace headshift::migrate
