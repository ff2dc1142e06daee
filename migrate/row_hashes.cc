#include "migrate/row_hashes.h"

namespace headshift::migrate {

StatusOr<std::map<int64_t, int64_t>> SourceHashes(PgConn& source, const RowSql& sql, const TenantTable& t,
                                                  const TenantSelector& sel, const IdMaps& maps,
                                                  const std::string& to_cluster) {
  auto r = source.Exec("SELECT t." + sql.Ident(t.pk) + ", " + sql.MappedHash(t, "t", maps, to_cluster) + " FROM " +
                       sql.Ident(t.name) + " t" + sql.MapJoins(t, "t", maps) + " WHERE " +
                       sql.MemberPredicate(t, "t", sel));
  if (!r.ok()) return r.status().WithContext("hashing " + t.name + " on the source");
  std::map<int64_t, int64_t> out;
  for (int i = 0; i < r->rows(); ++i) out[r->GetInt(i, 0)] = r->GetInt(i, 1);
  return out;
}

StatusOr<std::map<int64_t, int64_t>> TargetHashes(PgConn& target, const RowSql& sql, const TenantTable& t,
                                                  const std::string& migration_id) {
  auto r = target.Exec("SELECT t." + sql.Ident(t.pk) + ", " + sql.RawHash(t, "t") + " FROM " + sql.Ident(t.name) +
                       " t JOIN headshift_copy_rows s ON s.target_id = t." + sql.Ident(t.pk) +
                       " WHERE s.migration_id = " + sql.Literal(migration_id) + " AND s.tbl = " + sql.Literal(t.name));
  if (!r.ok()) return r.status().WithContext("hashing " + t.name + " on the target");
  std::map<int64_t, int64_t> out;
  for (int i = 0; i < r->rows(); ++i) out[r->GetInt(i, 0)] = r->GetInt(i, 1);
  return out;
}

StatusOr<std::vector<int64_t>> TargetExtras(PgConn& target, const RowSql& sql, const TenantTable& t,
                                            const TenantSelector& sel, const std::string& migration_id) {
  auto r = target.Exec("SELECT t." + sql.Ident(t.pk) + " FROM " + sql.Ident(t.name) + " t WHERE " +
                       sql.MemberPredicate(t, "t", sel) + " AND NOT EXISTS (SELECT 1 FROM headshift_copy_rows s WHERE "
                       "s.migration_id = " + sql.Literal(migration_id) + " AND s.tbl = " + sql.Literal(t.name) +
                       " AND s.target_id = t." + sql.Ident(t.pk) + ") ORDER BY 1");
  if (!r.ok()) return r.status().WithContext("looking for unrecorded " + t.name + " rows on the target");
  std::vector<int64_t> out;
  for (int i = 0; i < r->rows(); ++i) out.push_back(r->GetInt(i, 0));
  return out;
}

}  // namespace headshift::migrate
