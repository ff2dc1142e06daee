// Verifier: proves a copy exact. Per tenant table it computes, in SQL on each side, the row count and an
// order-independent checksum (sum of 64-bit row hashes; ids mapped through the recorded id map and the
// cluster column normalised on the source side), and compares both with the hashes recorded at the last
// sync (copy or catch-up). Source and target are computed at the same time on their own connections.
//
// When the sums differ it looks at rows: a target row that is missing, changed, or a tenant row on the
// target that the copy did not write is a mismatch; a source row changed, added or deleted since the
// sync is a late write (catch-up applies it) and does not fail verification.
//
// On any mismatch the copy is undone (split: the target rows are deleted; shared: the rows move back) and
// Failed is returned. Verify belongs before the route flips to the target. Once a catch-up ran (the cut
// happened, devices write to the target legitimately), target-side differences are reported as
// target_writes instead, never as mismatches, and nothing is ever undone.
// VerifyOptions::undo_on_mismatch=false only reports.
//
// Thread-safety: not thread-safe.
#pragma once

#include "migrate/move_context.h"
#include "migrate/reports.h"

namespace headshift::migrate {

struct VerifyOptions {
  bool undo_on_mismatch = true;
};

class Verifier {
 public:
  explicit Verifier(MoveContext& ctx) : ctx_(ctx) {}

  // BadInput when no copy is recorded for ref (or it was retired). *detail receives the report even when
  // Failed is returned.
  StatusOr<VerifyReport> Verify(const MoveRef& ref, const VerifyOptions& opts = {}, VerifyReport* detail = nullptr);

 private:
  Status VerifySplit(const MoveRef& ref, VerifyReport& rep);
  Status VerifyShared(const MoveRef& ref, VerifyReport& rep);
  MoveContext& ctx_;
};

}  // namespace headshift::migrate
