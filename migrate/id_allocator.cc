#include "migrate/id_allocator.h"

#include <algorithm>

namespace headshift::migrate {

StatusOr<IdMap> AllocateTargetIds(PgConn& target, const RowSql& sql, const TenantTable& t,
                                  const std::vector<int64_t>& source_ids) {
  IdMap out;
  if (source_ids.empty()) return out;
  const int64_t max_src = *std::max_element(source_ids.begin(), source_ids.end());
  const std::string pk = sql.Ident(t.pk), tab = sql.Ident(t.name);
  if (!t.sequence.empty()) {
    const std::string seq = sql.Literal(t.sequence) + "::regclass";
    auto sv = target.Exec("SELECT setval(" + seq + ", GREATEST(COALESCE(pg_sequence_last_value(" + seq + "), 0), " +
                          "(SELECT COALESCE(max(" + pk + "), 0) FROM " + tab + "), " + std::to_string(max_src) + ", 1))");
    if (!sv.ok()) return sv.status().WithContext("advancing the id sequence of " + t.name);
  }
  auto taken = target.Exec("SELECT " + pk + " FROM " + tab + " WHERE " + pk + " = ANY(" + RowSql::IdArray(source_ids) +
                           ") ORDER BY 1");
  if (!taken.ok()) return taken.status().WithContext("checking ids of " + t.name);
  if (taken->rows() == 0) return out;
  std::vector<int64_t> fresh;
  if (!t.sequence.empty()) {
    auto nv = target.Exec("SELECT nextval(" + sql.Literal(t.sequence) + "::regclass) FROM generate_series(1, " +
                          std::to_string(taken->rows()) + ")");
    if (!nv.ok()) return nv.status().WithContext("allocating ids for " + t.name);
    for (int i = 0; i < nv->rows(); ++i) fresh.push_back(nv->GetInt(i, 0));
  } else {
    auto mx = target.Exec("SELECT GREATEST(COALESCE(max(" + pk + "), 0), " + std::to_string(max_src) + ") FROM " + tab);
    if (!mx.ok()) return mx.status().WithContext("allocating ids for " + t.name);
    for (int i = 0; i < taken->rows(); ++i) fresh.push_back(mx->GetInt(0, 0) + 1 + i);
  }
  for (int i = 0; i < taken->rows(); ++i) out.push_back({taken->GetInt(i, 0), fresh[i]});
  return out;
}

}  // namespace headshift::migrate
