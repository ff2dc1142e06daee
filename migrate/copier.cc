#include "migrate/copier.h"

#include "migrate/copier_internal.h"

namespace headshift::migrate {
using namespace copier_internal;  // NOLINT: the copier's own internals


std::string SchemaDrift(const SchemaProfile& profile, const Catalog& source, const Catalog& target) {
  std::vector<std::string> names = {profile.root_table};
  std::set<std::string> optional;
  for (const auto& t : profile.tables) {
    names.push_back(t.table);
    if (t.optional) optional.insert(t.table);
  }
  std::string out;
  auto add = [&](const std::string& s) { out += (out.empty() ? "" : "; ") + s; };
  for (const auto& name : names) {
    const TableInfo* s = source.Find(name);
    const TableInfo* t = target.Find(name);
    if (!s && !t && optional.count(name)) continue;  // a fork's table neither database has
    if (!s || !t) {
      add("table " + name + " is missing on the " + std::string(s ? "target" : "source"));
      continue;
    }
    for (const auto& c : s->columns) {
      const ColumnInfo* tc = t->Find(c.name);
      if (!tc) add(name + "." + c.name + " is missing on the target");
      else if (tc->type != c.type) add(name + "." + c.name + " is " + c.type + " vs " + tc->type);
    }
    for (const auto& c : t->columns) {
      if (!s->Find(c.name)) add(name + "." + c.name + " exists only on the target");
    }
  }
  return out;
}

StatusOr<CopyReport> ReadCopyReport(PgConn& conn, const MoveRef& ref, const std::string& layout) {
  CopyReport rep;
  rep.ref = ref;
  rep.layout = layout;
  rep.resumed = true;
  auto header = ReadCopyHeader(conn, ref.migration_id);
  if (!header.ok()) return header.status();
  if (!*header) return Status::Failed("no copy recorded for migration " + ref.migration_id);
  auto maps = ReadRemaps(conn, ref.migration_id);
  if (!maps.ok()) return maps.status();
  rep.remaps = *maps;
  const auto& tables = (*header)->report.contains("tables") ? (*header)->report["tables"] : nlohmann::json::array();
  for (const auto& t : tables) {
    TableCopy tc;
    tc.table = t.value("table", "");
    tc.rows = t.value("rows", int64_t{0});
    tc.bytes = t.value("bytes", int64_t{0});
    tc.id_remaps = t.value("id_remaps", int64_t{0});
    tc.ms = t.value("ms", 0.0);
    rep.tables.push_back(tc);
  }
  if ((*header)->owned_tags) rep.owned_tags = *(*header)->owned_tags;
  return rep;
}

StatusOr<CopyReport> Copier::Copy(const MoveRef& ref, const CopyOptions& opts) {
  ClusterDatabases& dbs = ctx_.dbs();
  HS_RETURN_IF_ERROR(dbs.CheckKnown(ref.from, "source"));
  HS_RETURN_IF_ERROR(dbs.CheckKnown(ref.to, "target"));
  if (ref.from == ref.to) return Status::BadInput("source and target are the same cluster (" + ref.from + ")");
  if (ref.migration_id.empty()) return Status::BadInput("the migration id is empty", "create the migration in the journal first");
  if (ref.tenant.empty()) return Status::BadInput("the tenant name is empty");
  return dbs.shared() ? CopyShared(ref, opts) : CopySplit(ref, opts);
}

StatusOr<CopyReport> Copier::CopyShared(const MoveRef& ref, const CopyOptions& opts) {
  auto t0 = std::chrono::steady_clock::now();
  auto schema = ctx_.Schema(ref.from);
  if (!schema.ok()) return schema.status();
  const TenantSchema& s = **schema;
  HS_RETURN_IF_ERROR(ctx_.CheckClusterValue(s, ref.from));
  HS_RETURN_IF_ERROR(ctx_.CheckClusterValue(s, ref.to));
  auto connp = ctx_.dbs().Conn(ref.from);
  if (!connp.ok()) return connp.status();
  PgConn& c = **connp;
  HS_RETURN_IF_ERROR(EnsureHeadshiftTables(c));
  auto header = ReadCopyHeader(c, ref.migration_id);
  if (!header.ok()) return header.status();
  if (*header) {
    HS_RETURN_IF_ERROR(CheckHeaderMatches(**header, ref.tenant, ref.from, ref.to));
    return ReadCopyReport(c, ref, "shared");
  }
  RowSql sql(c, s);
  const TenantSelector from_sel = ctx_.Selector(ref.tenant, ref.from);
  const TenantSelector to_sel = ctx_.Selector(ref.tenant, ref.to);
  const std::string mig = Q(c, ref.migration_id);

  PgTx tx(c);
  HS_RETURN_IF_ERROR(tx.Begin());
  auto on_target = c.Exec("SELECT count(*) FROM " + sql.Ident(s.root().name) + " t WHERE " +
                          sql.MemberPredicate(s.root(), "t", to_sel));
  if (!on_target.ok()) return on_target.status();
  if (on_target->Get(0, 0) != "0") {
    return Status::Refused("tenant " + ref.tenant + " already exists on cluster " + ref.to,
                           "run `headshift plan` to see the conflicts");
  }
  // Lock the rows so that nothing changes them between the collision check, the hash and the move.
  std::map<std::string, double> lock_ms;
  for (const auto& t : s.tables()) {
    auto tt0 = std::chrono::steady_clock::now();
    auto lock = c.Exec("SELECT count(*) FROM (SELECT 1 FROM " + sql.Ident(t.name) + " t WHERE " +
                       sql.MemberPredicate(t, "t", from_sel) + " FOR UPDATE) x");
    if (!lock.ok()) return lock.status().WithContext("locking " + t.name);
    lock_ms[t.name] = MsSince(tt0);
  }
  // Values the target cluster took since preflight (headscale allocates IPs and names in memory).
  HS_RETURN_IF_ERROR(RefuseCollisions(ctx_, ref, c, s, from_sel, c, s, /*same_table=*/true));
  CopyReport rep;
  rep.ref = ref;
  rep.layout = "shared";
  rep.owned_tags = from_sel.owned_tags;
  Sums recorded;
  for (const auto& t : s.tables()) {
    auto tt0 = std::chrono::steady_clock::now();
    std::string member = sql.MemberPredicate(t, "t", from_sel);
    auto r = c.Exec("WITH ins AS (INSERT INTO headshift_copy_rows (migration_id, tbl, source_id, target_id, row_hash) "
                    "SELECT " + mig + ", " + Q(c, t.name) + ", t." + sql.Ident(t.pk) + ", t." + sql.Ident(t.pk) + ", " +
                    sql.MappedHash(t, "t", {}, ref.to) + " FROM " + sql.Ident(t.name) + " t WHERE " + member +
                    " RETURNING row_hash) SELECT count(*), COALESCE(sum(row_hash), 0)::text FROM ins");
    if (!r.ok()) return r.status().WithContext("recording " + t.name);
    recorded[t.name] = {r->GetInt(0, 0), r->Get(0, 1)};
    if (t.root && r->GetInt(0, 0) == 0) {
      return Status::Refused("tenant " + ref.tenant + " does not exist on cluster " + ref.from,
                             "check the tenant name and the source cluster (`headshift plan`)");
    }
    rep.tables.push_back({t.name, r->GetInt(0, 0), 0, 0, lock_ms[t.name] + MsSince(tt0)});
  }
  for (auto& tc : rep.tables) {
    const TenantTable* t = s.Find(tc.table);
    auto tt0 = std::chrono::steady_clock::now();
    if (t->has_cluster_column) {
      auto u = c.Exec("UPDATE " + sql.Ident(t->name) + " SET " + sql.Ident(s.cluster_column()) + " = " +
                      sql.ClusterValue(ref.to) + " WHERE " + sql.Ident(t->pk) +
                      " IN (SELECT source_id FROM headshift_copy_rows WHERE migration_id = " + mig + " AND tbl = " +
                      Q(c, t->name) + ")");
      if (!u.ok()) return u.status().WithContext("moving " + t->name);
      int64_t n = std::stoll(PQcmdTuples(u->get()));
      if (n != tc.rows) {
        return Status::Failed("moved " + std::to_string(n) + " rows of " + t->name + " but recorded " +
                              std::to_string(tc.rows) + "; nothing was committed");
      }
    }
    tc.ms += MsSince(tt0);
    HS_RETURN_IF_ERROR(Progress(opts, {t->name, tc.rows, true, 0, PQbackendPID(c.raw())}));
  }
  // The moved rows must hash exactly as recorded (cluster normalised): nothing else changed.
  for (const auto& t : s.tables()) {
    auto r = c.Exec("SELECT count(*), COALESCE(sum(" + sql.RawHash(t, "t") + "), 0)::text FROM " + sql.Ident(t.name) +
                    " t JOIN headshift_copy_rows s ON s.target_id = t." + sql.Ident(t.pk) + " AND s.migration_id = " +
                    mig + " AND s.tbl = " + Q(c, t.name));
    if (!r.ok()) return r.status().WithContext("checking " + t.name);
    if (r->GetInt(0, 0) != recorded[t.name].first || r->Get(0, 1) != recorded[t.name].second) {
      return Status::Failed("the moved rows of " + t.name + " do not match what was recorded; nothing was committed",
                            "a trigger or rule rewrites rows on UPDATE? check the table's triggers");
    }
  }
  rep.elapsed_ms = MsSince(t0);
  auto h = c.Exec("INSERT INTO headshift_copies (migration_id, tenant, from_cluster, to_cluster, layout, report) "
                  "VALUES ($1, $2, $3, $4, 'shared', $5::jsonb)",
                  {ref.migration_id, ref.tenant, ref.from, ref.to, rep.ToJson().dump()});
  if (!h.ok()) return h.status().WithContext("recording the copy");
  HS_RETURN_IF_ERROR(tx.Commit());
  return rep;
}

}  // namespace headshift::migrate
