#include "migrate/target_collisions.h"

#include <algorithm>
#include <map>
#include <set>

namespace headshift::migrate {
namespace {

std::string Join(const std::vector<std::string>& v, const std::string& sep) {
  std::string out;
  for (size_t i = 0; i < v.size(); ++i) out += (i ? sep : "") + v[i];
  return out;
}

}  // namespace

TargetCollisions::TargetCollisions(const MoveContext& ctx, CollisionSides sides)
    : ctx_(ctx),
      sides_(std::move(sides)),
      vsql_(*sides_.values_conn, *sides_.values_schema),
      tsql_(*sides_.target_conn, *sides_.target_schema) {}

std::string TargetCollisions::NotOwn(const TenantTable& tt) const {
  if (!sides_.own_on_target) return "TRUE";
  // Primary keys are never NULL, so NOT IN is exact here.
  return "t." + tsql_.Ident(tt.pk) + " NOT IN (" + tsql_.MemberIds(tt, *sides_.own_on_target) + ")";
}

StatusOr<std::vector<Conflict>> TargetCollisions::CheckAll() {
  std::vector<Conflict> out;
  for (const auto& t : sides_.values_schema->tables()) HS_RETURN_IF_ERROR(CheckTable(t, &out));
  return out;
}

Status TargetCollisions::CheckTable(const TenantTable& t, std::vector<Conflict>* out) {
  const TenantTable* tt = sides_.target_schema->Find(t.name);
  if (!tt) return Status::Ok();  // schema drift: reported by the schema checks
  std::vector<std::string> reported;  // columns covered by a one-column unique_index conflict
  HS_RETURN_IF_ERROR(CheckUniqueIndexes(t, *tt, out, &reported));
  return CheckUniqueInCluster(t, *tt, reported, out);
}

Status TargetCollisions::CheckUniqueIndexes(const TenantTable& t, const TenantTable& tt, std::vector<Conflict>* out,
                                            std::vector<std::string>* reported) {
  const std::string& to = sides_.target_cluster;
  const std::string member = vsql_.MemberPredicate(t, "t", sides_.values_selector);
  const std::string not_own = NotOwn(tt);
  for (const auto& u : tt.unique_indexes) {
    if (u.has_expressions || u.columns.empty()) continue;
    bool remapped = false;
    for (const auto& c : u.columns) remapped |= c == t.pk || t.TenantRef(c) != nullptr || !t.Find(c);
    if (remapped) continue;  // ids are remapped to free values by the copy
    if (t.root && sides_.skip_root_unique_indexes) continue;
    // Values side: evaluate the index predicate over the row as it will be on the target.
    std::vector<std::string> cols = vsql_.ColumnNames(t);
    std::vector<std::string> exprs = vsql_.MappedExprs(t, "t", {}, to, cols);
    std::string inner;
    for (size_t i = 0; i < cols.size(); ++i) inner += (i ? ", " : "") + exprs[i] + " AS " + vsql_.Ident(cols[i]);
    std::string key, notnull;
    for (size_t i = 0; i < u.columns.size(); ++i) {
      key += (i ? ", " : "") + vsql_.Ident(u.columns[i]);
      notnull += " AND " + vsql_.Ident(u.columns[i]) + " IS NOT NULL";
    }
    std::string pred = u.predicate.empty() ? "TRUE" : u.predicate;
    auto r = sides_.values_conn->Exec("SELECT " + vsql_.Ident(t.pk) + ", jsonb_build_array(" + key + ")::text FROM (SELECT " +
                                      inner + " FROM " + vsql_.Ident(t.name) + " t WHERE " + member + ") s WHERE (" +
                                      pred + ")" + notnull);
    if (!r.ok()) return r.status().WithContext("checking unique index " + u.name);
    if (r->rows() == 0) continue;
    nlohmann::json keys = nlohmann::json::array();
    std::map<std::string, std::string> own_of;
    for (int i = 0; i < r->rows(); ++i) {
      keys.push_back(r->Get(i, 1));
      own_of[r->Get(i, 1)] = r->Get(i, 0);
    }
    auto m = sides_.target_conn->Exec("SELECT t." + tsql_.Ident(tt.pk) + ", jsonb_build_array(" + key + ")::text k FROM " +
                                          tsql_.Ident(tt.name) + " t WHERE (" + pred + ") AND " + not_own +
                                          " AND jsonb_build_array(" + key +
                                          ")::text IN (SELECT jsonb_array_elements_text($1::jsonb)) ORDER BY 1",
                                      {keys.dump()});
    if (!m.ok()) return m.status().WithContext("checking unique index " + u.name + " on the target");
    if (m->rows() == 0) continue;
    std::vector<std::string> v, vals;
    for (int i = 0; i < m->rows(); ++i) {
      v.push_back(m->Get(i, 1) + " (" + sides_.own_id_label + " " + own_of[m->Get(i, 1)] + ", target id " +
                  m->Get(i, 0) + ")");
      vals.push_back(m->Get(i, 1));
    }
    out->push_back({"unique_index", t.name, Join(u.columns, ","),
                    std::to_string(v.size()) + " row(s) of " + t.name + " would violate unique index " + u.name +
                        " on cluster " + to + ": " + SampleValues(v),
                    "rename or remove the clashing rows on one side", CapValues(vals)});
    if (u.columns.size() == 1) reported->push_back(u.columns[0]);
  }
  return Status::Ok();
}

Status TargetCollisions::CheckUniqueInCluster(const TenantTable& t, const TenantTable& tt,
                                              const std::vector<std::string>& reported, std::vector<Conflict>* out) {
  const std::string& to = sides_.target_cluster;
  std::vector<std::string> cols;
  for (const auto& col : t.unique_in_cluster) {
    if (std::find(reported.begin(), reported.end(), col) != reported.end() || !tt.Find(col)) continue;
    cols.push_back(col);
  }
  if (cols.empty()) return Status::Ok();
  // One read of the tenant's rows for all the columns (the copy pays for this check inside its transaction).
  std::string q = "SELECT t." + vsql_.Ident(t.pk);
  for (const auto& col : cols) q += ", t." + vsql_.Ident(col) + "::text";
  auto r = sides_.values_conn->Exec(q + " FROM " + vsql_.Ident(t.name) + " t WHERE " +
                                    vsql_.MemberPredicate(t, "t", sides_.values_selector));
  if (!r.ok()) return r.status().WithContext("reading " + t.name + "." + Join(cols, ", ") + " of the tenant");
  std::vector<nlohmann::json> vals(cols.size(), nlohmann::json::array());
  std::vector<std::map<std::string, std::string>> own_of(cols.size());
  for (int i = 0; i < r->rows(); ++i) {
    for (size_t k = 0; k < cols.size(); ++k) {
      const int f = static_cast<int>(k) + 1;
      if (r->IsNull(i, f)) continue;
      std::string v = r->Get(i, f);
      if (v.empty()) continue;
      own_of[k][v] = r->Get(i, 0);
      vals[k].push_back(std::move(v));
    }
  }
  // One statement on the target for all the columns: (column index, target id, value).
  std::string sql;
  std::vector<std::string> params;
  const std::string scope = ctx_.ClusterScope(tsql_, tt, "t", to) + " AND " + NotOwn(tt);
  for (size_t k = 0; k < cols.size(); ++k) {
    if (vals[k].empty()) continue;
    params.push_back(vals[k].dump());
    const std::string c = "t." + tsql_.Ident(cols[k]) + "::text";
    sql += std::string(sql.empty() ? "" : " UNION ALL ") + "SELECT " + std::to_string(k) + " AS i, t." +
           tsql_.Ident(tt.pk) + " AS id, " + c + " AS v FROM " + tsql_.Ident(tt.name) + " t WHERE " + scope + " AND " +
           c + " IN (SELECT jsonb_array_elements_text($" + std::to_string(params.size()) + "::jsonb))";
  }
  if (sql.empty()) return Status::Ok();
  auto m = sides_.target_conn->Exec("SELECT i, id, v FROM (" + sql + ") x ORDER BY 1, 3, 2", params);
  if (!m.ok()) return m.status().WithContext("checking " + t.name + "." + Join(cols, ", ") + " on cluster " + to);
  for (int i = 0; i < m->rows();) {
    const size_t k = static_cast<size_t>(m->GetInt(i, 0));
    const std::string& col = cols[k];
    std::vector<std::string> v, raw;
    for (; i < m->rows() && static_cast<size_t>(m->GetInt(i, 0)) == k; ++i) {
      v.push_back(m->Get(i, 2) + " (" + sides_.own_id_label + " " + own_of[k][m->Get(i, 2)] + ", target id " +
                  m->Get(i, 1) + ")");
      raw.push_back(m->Get(i, 2));
    }
    out->push_back({"collision", t.name, col,
                    std::to_string(v.size()) + " " + t.name + "." + col + " value(s) already used on cluster " + to +
                        ": " + SampleValues(v),
                    "change the clashing " + col + " on one side (headscale requires it unique per cluster), or move "
                    "the tenant elsewhere",
                    CapValues(raw)});
  }
  return Status::Ok();
}

Status CollisionsRefused(const std::string& what, const std::vector<Conflict>& conflicts) {
  if (conflicts.empty()) return Status::Ok();
  std::string msg = what, fixes;
  std::set<std::string> seen;
  for (const auto& c : conflicts) {
    msg += "\n  - [" + c.kind + "] " + c.message;
    if (!c.fix.empty() && seen.insert(c.fix).second) fixes += (fixes.empty() ? "" : "; ") + c.fix;
  }
  return Status::Refused(msg, fixes);
}

}  // namespace headshift::migrate
