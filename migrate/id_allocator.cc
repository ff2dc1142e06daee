#include "migrate/id_allocator.h"

#include <algorithm>
#include <iterator>

namespace headshift::migrate {

StatusOr<std::vector<int64_t>> TakenTargetIds(PgConn& target, const RowSql& sql, const TenantTable& t,
                                              const std::vector<int64_t>& source_ids) {
  std::vector<int64_t> taken;
  if (source_ids.empty()) return taken;
  const int64_t min_src = *std::min_element(source_ids.begin(), source_ids.end());
  const int64_t max_src = *std::max_element(source_ids.begin(), source_ids.end());
  const std::string pk = sql.Ident(t.pk), tab = sql.Ident(t.name);
  auto range = target.Exec("SELECT " + pk + "::bigint FROM " + tab + " WHERE " + pk + " BETWEEN " +
                           std::to_string(min_src) + " AND " + std::to_string(max_src) + " ORDER BY 1");
  if (!range.ok()) return range.status().WithContext("checking ids of " + t.name);
  std::vector<int64_t> existing;
  existing.reserve(range->rows());
  for (int i = 0; i < range->rows(); ++i) existing.push_back(range->GetInt(i, 0));
  std::vector<int64_t> sorted = source_ids;
  std::sort(sorted.begin(), sorted.end());
  std::set_intersection(sorted.begin(), sorted.end(), existing.begin(), existing.end(), std::back_inserter(taken));
  return taken;
}

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
  auto taken_or = TakenTargetIds(target, sql, t, source_ids);
  if (!taken_or.ok()) return taken_or.status();
  const std::vector<int64_t>& taken = *taken_or;
  if (taken.empty()) return out;
  std::vector<int64_t> fresh;
  if (!t.sequence.empty()) {
    auto nv = target.Exec("SELECT nextval(" + sql.Literal(t.sequence) + "::regclass) FROM generate_series(1, " +
                          std::to_string(taken.size()) + ")");
    if (!nv.ok()) return nv.status().WithContext("allocating ids for " + t.name);
    for (int i = 0; i < nv->rows(); ++i) fresh.push_back(nv->GetInt(i, 0));
  } else {
    auto mx = target.Exec("SELECT GREATEST(COALESCE(max(" + pk + "), 0), " + std::to_string(max_src) + ") FROM " + tab);
    if (!mx.ok()) return mx.status().WithContext("allocating ids for " + t.name);
    for (size_t i = 0; i < taken.size(); ++i) fresh.push_back(mx->GetInt(0, 0) + 1 + static_cast<int64_t>(i));
  }
  for (size_t i = 0; i < taken.size(); ++i) out.push_back({taken[i], fresh[i]});
  return out;
}

}  // namespace headshift::migrate
