#include "migrate/row_drift.h"

namespace headshift::migrate {
namespace {

RowDrift NewOnSource(int64_t source_id) { return {source_id, 0, Drift::kNew, Drift::kSame}; }

}  // namespace

std::vector<RowDrift> DiffRecordedRows(const std::map<int64_t, CopyRow>& recorded,
                                       const std::map<int64_t, int64_t>* source_now,
                                       const std::map<int64_t, int64_t>* target_now) {
  static const std::map<int64_t, int64_t> kNone;
  const std::map<int64_t, int64_t>& source = source_now ? *source_now : kNone;
  std::vector<RowDrift> out;
  // Both maps are ordered by source id: one merge walk keeps the result in source-id order.
  auto si = source.begin();
  for (const auto& [sid, row] : recorded) {
    for (; si != source.end() && si->first < sid; ++si) out.push_back(NewOnSource(si->first));
    RowDrift d{sid, row.target_id, Drift::kSame, Drift::kSame};
    if (source_now) {
      if (si != source.end() && si->first == sid) {
        if (si->second != row.hash) d.source = Drift::kChanged;
        ++si;
      } else {
        d.source = Drift::kGone;
      }
    }
    if (target_now) {
      auto ti = target_now->find(row.target_id);
      if (ti == target_now->end()) d.target = Drift::kGone;
      else if (ti->second != row.hash) d.target = Drift::kChanged;
    }
    if (d.source != Drift::kSame || d.target != Drift::kSame) out.push_back(d);
  }
  for (; si != source.end(); ++si) out.push_back(NewOnSource(si->first));
  return out;
}

}  // namespace headshift::migrate
