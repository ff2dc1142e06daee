#include "migrate/target_collisions.h"

#include <algorithm>
#include <cstdint>
#include <map>
#include <optional>
#include <set>

namespace headshift::migrate {

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

bool TargetCollisions::ComparesIndex(const TenantTable& t, const UniqueIndex& u) const {
  if (u.has_expressions || u.columns.empty()) return false;
  for (const auto& c : u.columns) {
    if (c == t.pk || t.TenantRef(c) != nullptr || !t.Find(c)) return false;  // ids are remapped to free values by the copy
  }
  return !(t.root && sides_.skip_root_unique_indexes);
}

TargetCollisions::HashQueries TargetCollisions::BuildHashQueries() {
  // Per side, one aggregate subquery per scan (one per unique index, one per table for its
  // unique_in_cluster columns), cross-joined: each yields exactly one row, so the statement does too.
  // Column k of both statements hashes the same key; values are compared as the exact check compares
  // them (jsonb_build_array(key)::text for indexes, col::text for unique_in_cluster columns).
  std::vector<std::string> vparts, tparts;
  int k = 0;
  auto agg = [&](const std::string& expr, const std::string& filter) {
    return "string_agg(int8send(hashtextextended(" + expr + ", 0)), ''::bytea)" +
           (filter.empty() ? "" : " FILTER (WHERE " + filter + ")") + " AS h" + std::to_string(k++);
  };
  const std::string& to = sides_.target_cluster;
  for (const auto& t : sides_.values_schema->tables()) {
    const TenantTable* ttp = sides_.target_schema->Find(t.name);
    if (!ttp) continue;  // as CheckTable
    const TenantTable& tt = *ttp;
    const std::string member = vsql_.MemberPredicate(t, "t", sides_.values_selector);
    const std::string not_own = NotOwn(tt);
    for (const auto& u : tt.unique_indexes) {
      if (!ComparesIndex(t, u)) continue;
      const IndexSql ix = IndexKeySql(t, u, member);
      const int col = k;
      vparts.push_back("(SELECT " + agg(ix.key, "") + " FROM " + ix.values_rows + ")");
      k = col;
      tparts.push_back("(SELECT " + agg(ix.key, "") + " FROM " + tsql_.Ident(tt.name) + " t WHERE (" + ix.predicate +
                       ") AND " + not_own + ")");
    }
    std::vector<std::string> vaggs, taggs;
    const int first = k;
    for (const auto& c : t.unique_in_cluster) {
      if (!tt.Find(c)) continue;
      const std::string v = "t." + vsql_.Ident(c) + "::text";
      vaggs.push_back(agg(v, v + " <> ''"));
    }
    k = first;
    for (const auto& c : t.unique_in_cluster) {
      if (!tt.Find(c)) continue;
      taggs.push_back(agg("t." + tsql_.Ident(c) + "::text", ""));
    }
    if (vaggs.empty()) continue;
    vparts.push_back("(SELECT " + JoinStrings(vaggs, ", ") + " FROM " + vsql_.Ident(t.name) + " t WHERE " + member + ")");
    tparts.push_back("(SELECT " + JoinStrings(taggs, ", ") + " FROM " + tsql_.Ident(tt.name) + " t WHERE " +
                     ctx_.ClusterScope(tsql_, tt, "t", to) + " AND " + not_own + ")");
  }
  HashQueries q;
  if (vparts.empty()) return q;
  auto statement = [](const std::vector<std::string>& parts) {
    std::string sql = "SELECT * FROM ";
    for (size_t i = 0; i < parts.size(); ++i) sql += (i ? " CROSS JOIN " : "") + parts[i] + " g" + std::to_string(i);
    return sql;
  };
  q.values_sql = statement(vparts);
  q.target_sql = statement(tparts);
  return q;
}

namespace {

// bytea text output ("\\x" + hex) of concatenated 8-byte big-endian hashes -> sorted hashes.
// nullopt when the text is not that (ClusterDatabases sets bytea_output = hex on every connection).
std::optional<std::vector<uint64_t>> DecodeHashes(const std::string& hex) {
  if (hex.size() < 2 || hex[0] != '\\' || hex[1] != 'x' || (hex.size() - 2) % 16 != 0) return std::nullopt;
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  std::vector<uint64_t> out;
  out.reserve((hex.size() - 2) / 16);
  for (size_t i = 2; i < hex.size(); i += 16) {
    uint64_t h = 0;
    for (size_t j = 0; j < 16; ++j) {
      int n = nibble(hex[i + j]);
      if (n < 0) return std::nullopt;
      h = (h << 4) | static_cast<uint64_t>(n);
    }
    out.push_back(h);
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

StatusOr<bool> TargetCollisions::HashesMeet(const PgResult& values, const PgResult& target) {
  if (values.rows() != 1 || target.rows() != 1 || values.cols() != target.cols()) {
    return Status::Failed("the collision check's hash statements returned mismatched shapes");
  }
  for (int k = 0; k < values.cols(); ++k) {
    if (values.IsNull(0, k) || target.IsNull(0, k)) continue;
    auto v = DecodeHashes(values.Get(0, k));
    auto t = DecodeHashes(target.Get(0, k));
    if (!v || !t) return true;  // unreadable: let the exact check decide
    // Both sorted: one merge pass.
    for (size_t i = 0, j = 0; i < v->size() && j < t->size();) {
      if ((*v)[i] == (*t)[j]) return true;
      if ((*v)[i] < (*t)[j]) ++i;
      else ++j;
    }
  }
  return false;
}

TargetCollisions::IndexSql TargetCollisions::IndexKeySql(const TenantTable& t, const UniqueIndex& u,
                                                          const std::string& member) const {
  // The values side is the row as it will be on the target (cluster rewritten), so the index
  // predicate is evaluated over mapped columns.
  std::vector<std::string> cols = vsql_.ColumnNames(t);
  std::vector<std::string> exprs = vsql_.MappedExprs(t, "t", {}, sides_.target_cluster, cols);
  std::string inner;
  for (size_t i = 0; i < cols.size(); ++i) inner += (i ? ", " : "") + exprs[i] + " AS " + vsql_.Ident(cols[i]);
  std::string key, notnull;
  for (size_t i = 0; i < u.columns.size(); ++i) {
    key += (i ? ", " : "") + vsql_.Ident(u.columns[i]);
    notnull += " AND " + vsql_.Ident(u.columns[i]) + " IS NOT NULL";
  }
  IndexSql out;
  out.predicate = u.predicate.empty() ? "TRUE" : u.predicate;
  out.key = "jsonb_build_array(" + key + ")::text";
  out.values_rows = "(SELECT " + inner + " FROM " + vsql_.Ident(t.name) + " t WHERE " + member + ") s WHERE (" +
                    out.predicate + ")" + notnull;
  return out;
}

Status TargetCollisions::CheckUniqueIndexes(const TenantTable& t, const TenantTable& tt, std::vector<Conflict>* out,
                                            std::vector<std::string>* reported) {
  const std::string& to = sides_.target_cluster;
  const std::string member = vsql_.MemberPredicate(t, "t", sides_.values_selector);
  const std::string not_own = NotOwn(tt);
  for (const auto& u : tt.unique_indexes) {
    if (!ComparesIndex(t, u)) continue;
    const IndexSql ix = IndexKeySql(t, u, member);
    auto r = sides_.values_conn->Exec("SELECT " + vsql_.Ident(t.pk) + ", " + ix.key + " FROM " + ix.values_rows);
    if (!r.ok()) return r.status().WithContext("checking unique index " + u.name);
    if (r->rows() == 0) continue;
    nlohmann::json keys = nlohmann::json::array();
    std::map<std::string, std::string> own_of;
    for (int i = 0; i < r->rows(); ++i) {
      keys.push_back(r->Get(i, 1));
      own_of[r->Get(i, 1)] = r->Get(i, 0);
    }
    auto m = sides_.target_conn->Exec("SELECT t." + tsql_.Ident(tt.pk) + ", " + ix.key + " k FROM " + tsql_.Ident(tt.name) +
                                          " t WHERE (" + ix.predicate + ") AND " + not_own + " AND " + ix.key +
                                          " IN (SELECT jsonb_array_elements_text($1::jsonb)) ORDER BY 1",
                                      {keys.dump()});
    if (!m.ok()) return m.status().WithContext("checking unique index " + u.name + " on the target");
    if (m->rows() == 0) continue;
    // A credential column (SchemaProfile::secret_columns) is reported by row ids only, never by value.
    const bool secret = std::any_of(u.columns.begin(), u.columns.end(),
                                    [&](const std::string& c) { return ctx_.profile().IsSecretColumn(t.name, c); });
    std::vector<std::string> v, vals;
    for (int i = 0; i < m->rows(); ++i) {
      v.push_back((secret ? std::string(kSecretValue) : m->Get(i, 1)) + " (" + sides_.own_id_label + " " + own_of[m->Get(i, 1)] + ", target id " +
                  m->Get(i, 0) + ")");
      vals.push_back(secret ? std::string(kSecretValue) : m->Get(i, 1));
    }
    out->push_back({"unique_index", t.name, JoinStrings(u.columns, ","),
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
  // The copy pays for this check inside its transaction, so the common case (no clash) costs two
  // statements and moves no text: one scan of the tenant's rows gives a 64-bit hash of every value
  // (the hash the copy's row record uses, so both databases already have to agree on it), the target
  // returns its rows whose value hashes the same, and only those candidates are compared exactly.
  const std::string member = vsql_.MemberPredicate(t, "t", sides_.values_selector);
  std::string agg;
  for (const auto& col : cols) {
    const std::string c = "t." + vsql_.Ident(col) + "::text";
    agg += std::string(agg.empty() ? "" : ", ") + "array_agg(hashtextextended(" + c + ", 0)) FILTER (WHERE " + c +
           " IS NOT NULL AND " + c + " <> '')";
  }
  auto r = sides_.values_conn->Exec("SELECT " + agg + " FROM " + vsql_.Ident(t.name) + " t WHERE " + member);
  if (!r.ok()) return r.status().WithContext("reading " + t.name + "." + JoinStrings(cols, ", ") + " of the tenant");
  // Target candidates: (column index, target id, value) of the cluster's other rows.
  std::string sql;
  std::vector<std::string> params;
  const std::string scope = ctx_.ClusterScope(tsql_, tt, "t", to) + " AND " + NotOwn(tt);
  for (size_t k = 0; k < cols.size(); ++k) {
    if (r->IsNull(0, static_cast<int>(k))) continue;  // no values
    params.push_back(r->Get(0, static_cast<int>(k)));
    const std::string c = "t." + tsql_.Ident(cols[k]) + "::text";
    sql += std::string(sql.empty() ? "" : " UNION ALL ") + "SELECT " + std::to_string(k) + " AS i, t." +
           tsql_.Ident(tt.pk) + " AS id, " + c + " AS v FROM " + tsql_.Ident(tt.name) + " t WHERE " + scope +
           " AND hashtextextended(" + c + ", 0) IN (SELECT unnest($" + std::to_string(params.size()) + "::bigint[]))";
  }
  if (sql.empty()) return Status::Ok();
  auto m = sides_.target_conn->Exec("SELECT i, id, v FROM (" + sql + ") x ORDER BY 1, 3, 2", params);
  if (!m.ok()) return m.status().WithContext("checking " + t.name + "." + JoinStrings(cols, ", ") + " on cluster " + to);
  for (int i = 0; i < m->rows();) {
    const size_t k = static_cast<size_t>(m->GetInt(i, 0));
    const std::string& col = cols[k];
    std::vector<std::string> candidates, target_ids;
    for (; i < m->rows() && static_cast<size_t>(m->GetInt(i, 0)) == k; ++i) {
      candidates.push_back(m->Get(i, 2));
      target_ids.push_back(m->Get(i, 1));
    }
    // Exact comparison of the candidates, naming the tenant's row holding each value.
    const std::string c = "t." + vsql_.Ident(col) + "::text";
    auto o = sides_.values_conn->Exec("SELECT " + c + ", t." + vsql_.Ident(t.pk) + " FROM " + vsql_.Ident(t.name) +
                                          " t WHERE " + member + " AND " + c + " <> '' AND " + c +
                                          " IN (SELECT jsonb_array_elements_text($1::jsonb)) ORDER BY 2",
                                      {nlohmann::json(candidates).dump()});
    if (!o.ok()) return o.status().WithContext("reading " + t.name + "." + col + " of the tenant");
    std::map<std::string, std::string> own_of;
    for (int j = 0; j < o->rows(); ++j) own_of[o->Get(j, 0)] = o->Get(j, 1);
    std::vector<std::string> v, raw;
    for (size_t j = 0; j < candidates.size(); ++j) {
      auto own = own_of.find(candidates[j]);
      if (own == own_of.end()) continue;  // same hash, different value
      const bool secret = ctx_.profile().IsSecretColumn(t.name, col);  // reported by row ids only
      v.push_back((secret ? std::string(kSecretValue) : candidates[j]) + " (" + sides_.own_id_label + " " + own->second +
                  ", target id " + target_ids[j] + ")");
      raw.push_back(secret ? std::string(kSecretValue) : candidates[j]);
    }
    if (v.empty()) continue;
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
  return Status::Refused(msg, fixes + "; then run the step again (`headshift plan` lists every clash)");
}

}  // namespace headshift::migrate
