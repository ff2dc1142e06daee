#include "migrate/row_sql.h"

#include <nlohmann/json.hpp>

namespace headshift::migrate {

std::string JoinStrings(const std::vector<std::string>& v, const std::string& sep) {
  std::string out;
  for (size_t i = 0; i < v.size(); ++i) out += (i ? sep : "") + v[i];
  return out;
}

namespace {

// The alias of the join mapping `column` (the primary key maps through its own table's map).
std::string MapAlias(const std::string& alias, size_t index) { return alias + "_m" + std::to_string(index); }

}  // namespace

std::string RowSql::ClusterValue(const std::string& cluster) const {
  return Literal(cluster) + "::" + schema_.cluster_type();
}

std::string RowSql::IdArray(const std::vector<int64_t>& ids) {
  std::string s = "'{";
  for (size_t i = 0; i < ids.size(); ++i) {
    if (i) s += ',';
    s += std::to_string(ids[i]);
  }
  return s + "}'::bigint[]";
}

std::string RowSql::MemberIds(const TenantTable& t, const TenantSelector& sel) const {
  return "SELECT " + Ident(t.pk) + " FROM " + Ident(t.name) + " WHERE " + MemberPredicate(t, Ident(t.name), sel);
}

std::string RowSql::MemberPredicate(const TenantTable& t, const std::string& alias, const TenantSelector& sel) const {
  if (t.root) {
    std::string p = alias + "." + Ident(schema_.profile().root_key) + " = " + Literal(sel.tenant);
    if (sel.cluster) p += " AND " + alias + "." + Ident(schema_.cluster_column()) + " = " + ClusterValue(*sel.cluster);
    return "(" + p + ")";
  }
  std::vector<std::string> ors;
  for (const auto& o : t.owners) {
    if (o.ref_table == t.name) continue;  // self-reference: the row reaches the tenant another way
    const TenantTable* ref = schema_.Find(o.ref_table);
    ors.push_back(alias + "." + Ident(o.column) + " IN (" + MemberIds(*ref, sel) + ")");
  }
  std::string tagged = TaggedPredicate(t, alias, sel);
  if (tagged != "FALSE") ors.push_back(tagged);
  if (ors.empty()) return "FALSE";
  // Appended, not `"(" + JoinStrings(...) + ")"`: operator+(const char*, string&&) inlines to an insert at
  // position 0 that GCC 12 at -O3 misreads as overlapping memcpy (a -Wrestrict false positive, GCC PR 105329).
  std::string p = "(";
  p += JoinStrings(ors, " OR ");
  p += ')';
  return p;
}

std::string RowSql::RootOwnersNull(const TenantTable& t, const std::string& alias) const {
  if (t.root_owner_columns.empty()) return "FALSE";
  std::vector<std::string> nulls;
  for (const auto& c : t.root_owner_columns) nulls.push_back(alias + "." + Ident(c) + " IS NULL");
  std::string p = "(";  // appended, not "(" + std::string&&: GCC 12's -Wrestrict false positive at -O3
  p += JoinStrings(nulls, " AND ");
  p += ')';
  return p;
}

std::string RowSql::TaggedPredicate(const TenantTable& t, const std::string& alias, const TenantSelector& sel) const {
  if (t.root || t.tags_column.empty() || sel.owned_tags.empty()) return "FALSE";
  // Shared layout: tagged rows of the selector's cluster only (they do not reach the root's cluster).
  if (sel.cluster && !t.has_cluster_column) return "FALSE";
  const std::string owned = nlohmann::json(sel.owned_tags).dump();
  const std::string col = alias + "." + Ident(t.tags_column);
  // CASE: the jsonb cast runs only on text that looks like an array (headscale writes JSON or "null").
  std::string p = RootOwnersNull(t, alias) + " AND (CASE WHEN " + col + " IS NULL OR ltrim(" + col +
                  ") NOT LIKE '[%' THEN false ELSE " + col + "::jsonb <> '[]'::jsonb AND " + col + "::jsonb <@ " +
                  Literal(owned) + "::jsonb END)";
  if (sel.cluster) p += " AND " + alias + "." + Ident(schema_.cluster_column()) + " = " + ClusterValue(*sel.cluster);
  return "(" + p + ")";
}

std::vector<std::string> RowSql::MappedExprs(const TenantTable& t, const std::string& alias, const IdMaps& maps,
                                             const std::string& to_cluster,
                                             const std::vector<std::string>& columns) const {
  auto mapped = [&](const std::string& table) {
    auto it = maps.find(table);
    return it != maps.end() && !it->second.empty();
  };
  std::vector<std::string> out;
  for (const auto& c : columns) {
    const ColumnInfo* ci = t.Find(c);
    std::string type = ci ? ci->type : "bigint";
    if (c == t.pk && mapped(t.name)) {
      out.push_back("COALESCE(" + MapAlias(alias, 0) + ".n, " + alias + "." + Ident(c) + ")::" + type);
      continue;
    }
    bool done = false;
    for (size_t i = 0; i < t.tenant_refs.size(); ++i) {
      if (t.tenant_refs[i].column == c && mapped(t.tenant_refs[i].ref_table)) {
        out.push_back("COALESCE(" + MapAlias(alias, i + 1) + ".n, " + alias + "." + Ident(c) + ")::" + type);
        done = true;
        break;
      }
    }
    if (done) continue;
    if (!to_cluster.empty() && !schema_.cluster_column().empty() && c == schema_.cluster_column()) {
      out.push_back(ClusterValue(to_cluster));
      continue;
    }
    out.push_back(alias + "." + Ident(c));
  }
  return out;
}

std::string RowSql::MapJoins(const TenantTable& t, const std::string& alias, const IdMaps& maps) const {
  auto join = [&](const std::string& table, const std::string& column, const std::string& as) -> std::string {
    auto it = maps.find(table);
    if (it == maps.end() || it->second.empty()) return "";
    std::vector<int64_t> olds, news;
    for (const auto& [o, n] : it->second) {
      olds.push_back(o);
      news.push_back(n);
    }
    return " LEFT JOIN (SELECT unnest(" + IdArray(olds) + ") AS o, unnest(" + IdArray(news) + ") AS n) " + as +
           " ON " + as + ".o = " + alias + "." + Ident(column);
  };
  std::string s = join(t.name, t.pk, MapAlias(alias, 0));
  for (size_t i = 0; i < t.tenant_refs.size(); ++i) {
    s += join(t.tenant_refs[i].ref_table, t.tenant_refs[i].column, MapAlias(alias, i + 1));
  }
  return s;
}

std::string RowSql::MappedSelect(const TenantTable& t, const TenantSelector& sel, const IdMaps& maps,
                                 const std::string& to_cluster, const std::vector<std::string>& columns,
                                 const std::string& extra_where) const {
  const std::string a = "t";
  std::vector<std::string> exprs = MappedExprs(t, a, maps, to_cluster, columns);
  for (size_t i = 0; i < exprs.size(); ++i) exprs[i] += " AS " + Ident(columns[i]);
  std::string sql = "SELECT " + JoinStrings(exprs, ", ") + " FROM " +
                    Ident(t.name) + " " + a + MapJoins(t, a, maps) + " WHERE " + MemberPredicate(t, a, sel);
  if (!extra_where.empty()) sql += " AND (" + extra_where + ")";
  return sql;
}

std::string RowSql::MappedHash(const TenantTable& t, const std::string& alias, const IdMaps& maps,
                               const std::string& to_cluster) const {
  return "hashtextextended(ROW(" + JoinStrings(MappedExprs(t, alias, maps, to_cluster, t.CanonicalColumns()), ", ") +
         ")::text, 0)";
}

std::string RowSql::RawHash(const TenantTable& t, const std::string& alias) const {
  std::vector<std::string> cols;
  for (const auto& c : t.CanonicalColumns()) cols.push_back(alias + "." + Ident(c));
  return "hashtextextended(ROW(" + JoinStrings(cols, ", ") + ")::text, 0)";
}

std::vector<std::string> RowSql::ColumnNames(const TenantTable& t) const {
  std::vector<std::string> out;
  for (const auto& c : t.columns) out.push_back(c.name);
  return out;
}

std::string RowSql::ColumnList(const TenantTable& t) const {
  std::vector<std::string> q;
  for (const auto& c : t.columns) q.push_back(Ident(c.name));
  return JoinStrings(q, ", ");
}

}  // namespace headshift::migrate
