// Row drift: how one tenant table's rows moved away from what the last sync (copy or catch-up)
// recorded, on each side. Verify, catch-up, retire and rollback all compare the same way, so "changed",
// "gone" and "new" mean the same thing in every step:
//   - source side: a recorded row whose source row is gone or hashes differently now, and a tenant row
//     on the source that no sync recorded (new);
//   - target side: a recorded row whose target row is gone or hashes differently now. Tenant rows on
//     the target that no sync wrote are not seen here: TargetExtras (row_hashes.h) finds them.
// What a difference means (late write, mismatch, conflict, change that retire or rollback would lose)
// is the caller's decision.
//
// Thread-safety: a pure function of its arguments (reads them, keeps nothing).
#pragma once

#include <cstdint>
#include <map>
#include <vector>

#include "migrate/copy_state.h"

namespace headshift::migrate {

enum class Drift { kSame, kChanged, kGone, kNew };

struct RowDrift {
  int64_t source_id = 0;
  int64_t target_id = 0;        // the recorded target id; 0 for a row new on the source
  Drift source = Drift::kSame;  // kSame, kChanged, kGone or kNew
  Drift target = Drift::kSame;  // kSame, kChanged or kGone (never kNew)
};

// The rows of one table that drifted on at least one side, ordered by source id.
//   recorded:   source id -> recorded row, as ReadCopyRows gives it for the table.
//   source_now: source id -> mapped row hash now (SourceHashes), or nullptr to leave the source side
//               out (then every `source` is kSame and no row is kNew).
//   target_now: target id -> row hash now (TargetHashes), or nullptr to leave the target side out.
std::vector<RowDrift> DiffRecordedRows(const std::map<int64_t, CopyRow>& recorded,
                                       const std::map<int64_t, int64_t>* source_now,
                                       const std::map<int64_t, int64_t>* target_now);

}  // namespace headshift::migrate
