#include "migrate/catalog.h"

#include <nlohmann/json.hpp>

namespace headshift::migrate {
namespace {

// The strings of a JSON array produced by array_to_json(array_agg(name)).
std::vector<std::string> JsonStrings(const std::string& json_text) {
  std::vector<std::string> out;
  if (json_text.empty()) return out;
  auto j = nlohmann::json::parse(json_text, nullptr, /*allow_exceptions=*/false);
  if (!j.is_array()) return out;
  for (const auto& e : j) out.push_back(e.is_string() ? e.get<std::string>() : e.dump());
  return out;
}

}  // namespace

const ColumnInfo* TableInfo::Find(const std::string& column) const {
  for (const auto& c : columns) {
    if (c.name == column) return &c;
  }
  return nullptr;
}

const TableInfo* Catalog::Find(const std::string& table) const {
  auto it = tables.find(table);
  return it == tables.end() ? nullptr : &it->second;
}

namespace {

// Runs several ;-separated statements in one round trip (simple query protocol) and returns each
// statement's result in order.
StatusOr<std::vector<PgResult>> ExecBatch(PgConn& conn, const std::string& sql) {
  if (PQsendQuery(conn.raw(), sql.c_str()) != 1) return Status::Failed("SQL failed: " + conn.LastError());
  std::vector<PgResult> out;
  std::string err;
  while (PGresult* r = PQgetResult(conn.raw())) {
    ExecStatusType st = PQresultStatus(r);
    if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK && err.empty()) err = PQresultErrorMessage(r);
    out.emplace_back(r);
  }
  if (!err.empty()) {
    while (!err.empty() && (err.back() == '\n' || err.back() == ' ')) err.pop_back();
    return Status::Failed("SQL failed: " + err);
  }
  return out;
}

}  // namespace

StatusOr<Catalog> ReadCatalog(PgConn& conn) {
  Catalog cat;
  // One round trip for the whole catalog: a fresh backend pays for its cold caches once.
  auto batch = ExecBatch(conn,
      // 0: schema and version
      "SELECT current_schema(), current_setting('server_version_num')::int;"
      // 1: columns of ordinary and partitioned tables
      "SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull, a.atthasdef, "
      "       a.attgenerated <> '' "
      "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
      "JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped "
      "WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') "
      "ORDER BY c.relname, a.attnum;"
      // 2: unique indexes (key columns in order, predicates)
      "SELECT c.relname, ic.relname, i.indisprimary, "
      "       COALESCE(pg_get_expr(i.indpred, i.indrelid), ''), i.indexprs IS NOT NULL, "
      "       pg_get_indexdef(i.indexrelid), "
      "       (SELECT array_to_json(array_agg(a.attname ORDER BY k.ord)) "
      "          FROM unnest(i.indkey::int2[]) WITH ORDINALITY k(attnum, ord) "
      "          JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum "
      "          WHERE k.ord <= i.indnkeyatts) "
      "FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid JOIN pg_class ic ON ic.oid = i.indexrelid "
      "JOIN pg_namespace n ON n.oid = c.relnamespace "
      "WHERE n.nspname = current_schema() AND i.indisunique AND i.indisvalid "
      "ORDER BY c.relname, ic.relname;"
      // 3: foreign keys
      "SELECT c.relname, con.conname, rc.relname, "
      "  (SELECT array_to_json(array_agg(a.attname ORDER BY k.ord)) FROM unnest(con.conkey) WITH ORDINALITY k(n, ord) "
      "     JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.n), "
      "  (SELECT array_to_json(array_agg(a.attname ORDER BY k.ord)) FROM unnest(con.confkey) WITH ORDINALITY k(n, ord) "
      "     JOIN pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.n) "
      "FROM pg_constraint con JOIN pg_class c ON c.oid = con.conrelid JOIN pg_class rc ON rc.oid = con.confrelid "
      "JOIN pg_namespace n ON n.oid = c.relnamespace "
      "WHERE con.contype = 'f' AND n.nspname = current_schema() ORDER BY c.relname, con.conname;"
      // 4: sequences behind one-column primary keys
      "SELECT c.relname, pg_get_serial_sequence(quote_ident(n.nspname) || '.' || quote_ident(c.relname), a.attname) "
      "FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
      "JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0] "
      "WHERE i.indisprimary AND i.indnkeyatts = 1 AND n.nspname = current_schema();"
      // 5: tables with user triggers
      "SELECT DISTINCT c.relname FROM pg_trigger tg JOIN pg_class c ON c.oid = tg.tgrelid "
      "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE NOT tg.tgisinternal AND n.nspname = current_schema()");
  if (!batch.ok()) return batch.status().WithContext("reading the catalog");
  if (batch->size() != 6) return Status::Failed("reading the catalog: unexpected number of results");
  const PgResult& v = (*batch)[0];
  if (v.IsNull(0, 0)) {
    return Status::Failed("the connection has no current schema (empty search_path)",
                          "set search_path in the DSN, e.g. options='-c search_path=public'");
  }
  cat.schema = v.Get(0, 0);
  cat.server_version = static_cast<int>(v.GetInt(0, 1));

  const PgResult& cols = (*batch)[1];
  for (int i = 0; i < cols.rows(); ++i) {
    TableInfo& t = cat.tables[cols.Get(i, 0)];
    t.name = cols.Get(i, 0);
    t.columns.push_back({cols.Get(i, 1), cols.Get(i, 2), cols.Get(i, 3) == "t", cols.Get(i, 4) == "t",
                         cols.Get(i, 5) == "t"});
  }
  const PgResult& idx = (*batch)[2];
  for (int i = 0; i < idx.rows(); ++i) {
    auto it = cat.tables.find(idx.Get(i, 0));
    if (it == cat.tables.end()) continue;
    UniqueIndex u;
    u.name = idx.Get(i, 1);
    u.primary = idx.Get(i, 2) == "t";
    u.predicate = idx.Get(i, 3);
    u.has_expressions = idx.Get(i, 4) == "t";
    u.definition = idx.Get(i, 5);
    if (!u.has_expressions) u.columns = JsonStrings(idx.Get(i, 6));
    if (u.primary) it->second.primary_key = u.columns;
    it->second.unique_indexes.push_back(std::move(u));
  }
  const PgResult& fks = (*batch)[3];
  for (int i = 0; i < fks.rows(); ++i) {
    auto it = cat.tables.find(fks.Get(i, 0));
    if (it == cat.tables.end()) continue;
    it->second.foreign_keys.push_back(
        {fks.Get(i, 1), JsonStrings(fks.Get(i, 3)), fks.Get(i, 2), JsonStrings(fks.Get(i, 4))});
  }
  const PgResult& seqs = (*batch)[4];
  for (int i = 0; i < seqs.rows(); ++i) {
    auto it = cat.tables.find(seqs.Get(i, 0));
    if (it != cat.tables.end() && !seqs.IsNull(i, 1)) it->second.pk_sequence = seqs.Get(i, 1);
  }
  const PgResult& trg = (*batch)[5];
  for (int i = 0; i < trg.rows(); ++i) {
    auto it = cat.tables.find(trg.Get(i, 0));
    if (it != cat.tables.end()) it->second.has_user_triggers = true;
  }
  return cat;
}

}  // namespace headshift::migrate
