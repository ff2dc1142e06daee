#include "migrate/copier.h"

#include <chrono>
#include <map>

#include "migrate/copy_state.h"
#include "migrate/headshift_tables.h"
#include "migrate/id_allocator.h"
#include "migrate/pg_copy.h"
#include "migrate/pg_tx.h"

namespace headshift::migrate {
namespace {

// Advisory transaction lock serialising copies into one database (id planning + COPY).
constexpr const char* kCopyTargetLock = "7228116712049151002";

double MsSince(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

std::string Q(PgConn& c, const std::string& s) { return c.QuoteLiteral(s); }

Status Progress(const CopyOptions& opts, const CopyProgress& p) {
  if (!opts.on_progress) return Status::Ok();
  return opts.on_progress(p);
}

// "SELECT 'users', count(*), sum(...)::text FROM ... UNION ALL ..." result -> table -> (count, sum).
using Sums = std::map<std::string, std::pair<int64_t, std::string>>;

Sums ReadSums(const PgResult& r) {
  Sums s;
  for (int i = 0; i < r.rows(); ++i) s[r.Get(i, 0)] = {r.GetInt(i, 1), r.Get(i, 2)};
  return s;
}

}  // namespace

std::string SchemaDrift(const SchemaProfile& profile, const Catalog& source, const Catalog& target) {
  std::vector<std::string> names = {profile.root_table};
  for (const auto& t : profile.tables) names.push_back(t.table);
  std::string out;
  auto add = [&](const std::string& s) { out += (out.empty() ? "" : "; ") + s; };
  for (const auto& name : names) {
    const TableInfo* s = source.Find(name);
    const TableInfo* t = target.Find(name);
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
  CopyReport rep;
  rep.ref = ref;
  rep.layout = "shared";
  Sums recorded;
  for (const auto& t : s.tables()) {
    auto tt0 = std::chrono::steady_clock::now();
    std::string member = sql.MemberPredicate(t, "t", from_sel);
    // Lock the rows so that nothing changes them between the hash and the move.
    auto lock = c.Exec("SELECT count(*) FROM (SELECT 1 FROM " + sql.Ident(t.name) + " t WHERE " + member +
                       " FOR UPDATE) x");
    if (!lock.ok()) return lock.status().WithContext("locking " + t.name);
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
    rep.tables.push_back({t.name, r->GetInt(0, 0), 0, 0, MsSince(tt0)});
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

StatusOr<CopyReport> Copier::CopySplit(const MoveRef& ref, const CopyOptions& opts) {
  auto t0 = std::chrono::steady_clock::now();
  ClusterDatabases& dbs = ctx_.dbs();
  auto ssp = ctx_.Schema(ref.from);
  if (!ssp.ok()) return ssp.status();
  auto tsp = ctx_.Schema(ref.to);
  if (!tsp.ok()) return tsp.status();
  const TenantSchema& ss = **ssp;
  const TenantSchema& ts = **tsp;
  HS_RETURN_IF_ERROR(ctx_.CheckClusterValue(ss, ref.to));
  {
    auto sc = ctx_.CatalogOf(ref.from);
    auto tc = ctx_.CatalogOf(ref.to);
    if (!sc.ok()) return sc.status();
    if (!tc.ok()) return tc.status();
    std::string drift = SchemaDrift(ctx_.profile(), **sc, **tc);
    if (!drift.empty()) {
      return Status::Refused("schema drift between cluster " + ref.from + " and " + ref.to + ": " + drift,
                             "run both headscale nodes on the same version (same schema)");
    }
  }
  auto srcp = dbs.Conn(ref.from);
  if (!srcp.ok()) return srcp.status();
  auto tgtp = dbs.Conn(ref.to);
  if (!tgtp.ok()) return tgtp.status();
  PgConn& src = **srcp;
  PgConn& tgt = **tgtp;
  HS_RETURN_IF_ERROR(EnsureHeadshiftTables(tgt));
  auto header = ReadCopyHeader(tgt, ref.migration_id);
  if (!header.ok()) return header.status();
  if (*header) {
    HS_RETURN_IF_ERROR(CheckHeaderMatches(**header, ref.tenant, ref.from, ref.to));
    return ReadCopyReport(tgt, ref, "split");
  }
  RowSql ssql(src, ss);
  RowSql tsql(tgt, ts);
  const TenantSelector src_sel = ctx_.Selector(ref.tenant, ref.from);
  const std::string mig = Q(tgt, ref.migration_id);
  const int src_pid = PQbackendPID(src.raw());
  const int tgt_pid = PQbackendPID(tgt.raw());

  PgTx stx(src);
  HS_RETURN_IF_ERROR(stx.Begin("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"));
  PgTx ttx(tgt);
  HS_RETURN_IF_ERROR(ttx.Begin());
  {
    auto l = tgt.Exec(std::string("SELECT pg_advisory_xact_lock(") + kCopyTargetLock + ")");
    if (!l.ok()) return l.status().WithContext("serialising copies into cluster " + ref.to);
    auto r = tgt.Exec("SELECT count(*) FROM " + tsql.Ident(ts.root().name) + " t WHERE " +
                      tsql.MemberPredicate(ts.root(), "t", ctx_.Selector(ref.tenant, ref.to)));
    if (!r.ok()) return r.status();
    if (r->Get(0, 0) != "0") {
      return Status::Refused("tenant " + ref.tenant + " already exists on cluster " + ref.to,
                             "run `headshift plan` to see the conflicts");
    }
  }

  // Ids: keep the free ones, remap the taken ones to fresh sequence values.
  CopyReport rep;
  rep.ref = ref;
  rep.layout = "split";
  std::map<std::string, std::vector<int64_t>> src_ids;
  for (const auto& t : ss.tables()) {
    const TenantTable* tt = ts.Find(t.name);
    auto r = src.Exec("SELECT t." + ssql.Ident(t.pk) + " FROM " + ssql.Ident(t.name) + " t WHERE " +
                      ssql.MemberPredicate(t, "t", src_sel) + " ORDER BY 1");
    if (!r.ok()) return r.status().WithContext("listing " + t.name + " of tenant " + ref.tenant);
    auto& ids = src_ids[t.name];
    ids.reserve(r->rows());
    for (int i = 0; i < r->rows(); ++i) ids.push_back(r->GetInt(i, 0));
    if (t.root && ids.empty()) {
      return Status::Refused("tenant " + ref.tenant + " does not exist on cluster " + ref.from,
                             "check the tenant name and the source cluster (`headshift plan`)");
    }
    if (ids.empty()) continue;
    auto m = AllocateTargetIds(tgt, tsql, *tt, ids);
    if (!m.ok()) return m.status();
    if (!m->empty()) rep.remaps[t.name] = std::move(*m);
  }

  // Stream every table, parents first.
  for (const auto& t : ss.tables()) {
    const TenantTable* tt = ts.Find(t.name);
    auto tt0 = std::chrono::steady_clock::now();
    std::vector<std::string> cols;
    for (const auto& c : tt->columns) cols.push_back(c.name);
    TableCopy tc;
    tc.table = t.name;
    tc.id_remaps = rep.remaps.count(t.name) ? static_cast<int64_t>(rep.remaps[t.name].size()) : 0;
    if (!src_ids[t.name].empty()) {
      std::string out = "COPY (" + ssql.MappedSelect(t, src_sel, rep.remaps, ref.to, cols) + ") TO STDOUT (FORMAT binary)";
      std::string in = "COPY " + tsql.Ident(tt->name) + " (" + tsql.ColumnList(*tt) + ") FROM STDIN (FORMAT binary)";
      CopyProgressFn progress;
      if (opts.on_progress && opts.progress_every_rows > 0) {
        progress = [&](int64_t rows) { return Progress(opts, {t.name, rows, false, src_pid, tgt_pid}); };
      }
      auto r = StreamCopy(src, out, tgt, in, progress, opts.progress_every_rows);
      if (!r.ok()) return r.status().WithContext("copying " + t.name + " (nothing was committed)");
      tc.rows = r->rows;
      tc.bytes = r->bytes;
      if (tc.rows != static_cast<int64_t>(src_ids[t.name].size())) {
        return Status::Failed("copied " + std::to_string(tc.rows) + " rows of " + t.name + ", expected " +
                              std::to_string(src_ids[t.name].size()) + "; nothing was committed");
      }
    }
    tc.ms = MsSince(tt0);
    rep.tables.push_back(tc);
    HS_RETURN_IF_ERROR(Progress(opts, {t.name, tc.rows, true, src_pid, tgt_pid}));
  }

  // Record per-row hashes on the target while the source computes its side in the same snapshot.
  std::string src_sums;
  for (const auto& t : ss.tables()) {
    src_sums += std::string(src_sums.empty() ? "" : " UNION ALL ") + "SELECT " + ssql.Literal(t.name) +
                "::text, count(*), COALESCE(sum(" + ssql.MappedHash(t, "t", rep.remaps, ref.to) + "), 0)::text FROM " +
                ssql.Ident(t.name) + " t" + ssql.MapJoins(t, "t", rep.remaps) + " WHERE " +
                ssql.MemberPredicate(t, "t", src_sel);
  }
  HS_RETURN_IF_ERROR(SendQuery(src, src_sums));
  Sums tgt_sums;
  Status rec_status;
  for (const auto& t : ss.tables()) {
    const TenantTable* tt = ts.Find(t.name);
    const auto& ids = src_ids[t.name];
    if (ids.empty()) {
      tgt_sums[t.name] = {0, "0"};
      continue;
    }
    std::map<int64_t, int64_t> fwd;
    for (const auto& [o, n] : rep.remaps[t.name]) fwd[o] = n;
    std::vector<int64_t> tids, olds, news;
    tids.reserve(ids.size());
    for (int64_t id : ids) {
      auto it = fwd.find(id);
      tids.push_back(it == fwd.end() ? id : it->second);
    }
    for (const auto& [o, n] : rep.remaps[t.name]) {
      olds.push_back(o);
      news.push_back(n);
    }
    std::string reverse = olds.empty() ? "" : " LEFT JOIN (SELECT unnest(" + RowSql::IdArray(news) + ") AS n, unnest(" +
                                                  RowSql::IdArray(olds) + ") AS o) m ON m.n = t." + tsql.Ident(tt->pk);
    std::string source_id = olds.empty() ? "t." + tsql.Ident(tt->pk) : "COALESCE(m.o, t." + tsql.Ident(tt->pk) + ")";
    auto r = tgt.Exec("WITH ins AS (INSERT INTO headshift_copy_rows (migration_id, tbl, source_id, target_id, row_hash) "
                      "SELECT " + mig + ", " + tsql.Literal(t.name) + ", " + source_id + ", t." + tsql.Ident(tt->pk) + ", " +
                      tsql.RawHash(*tt, "t") + " FROM " + tsql.Ident(tt->name) + " t" + reverse + " WHERE t." +
                      tsql.Ident(tt->pk) + " = ANY(" + RowSql::IdArray(tids) + ") RETURNING row_hash) "
                      "SELECT count(*), COALESCE(sum(row_hash), 0)::text FROM ins");
    if (!r.ok()) {
      rec_status = r.status().WithContext("recording the copy of " + t.name);
      break;
    }
    tgt_sums[t.name] = {r->GetInt(0, 0), r->Get(0, 1)};
  }
  auto sr = AwaitResult(src);
  if (!rec_status.ok()) return rec_status;
  if (!sr.ok()) return sr.status().WithContext("checksumming the source");
  Sums src_sum = ReadSums(*sr);
  for (const auto& t : ss.tables()) {
    if (src_sum[t.name] != tgt_sums[t.name]) {
      return Status::Failed("the copy of " + t.name + " does not match its source (" +
                                std::to_string(src_sum[t.name].first) + " rows, checksum " + src_sum[t.name].second +
                                " on the source; " + std::to_string(tgt_sums[t.name].first) + " rows, checksum " +
                                tgt_sums[t.name].second + " on the target); nothing was committed",
                            "a trigger or default on the target rewrites copied rows? compare the two schemas");
    }
  }
  for (auto it = rep.remaps.begin(); it != rep.remaps.end();) {
    it = it->second.empty() ? rep.remaps.erase(it) : std::next(it);
  }
  rep.elapsed_ms = MsSince(t0);
  auto h = tgt.Exec("INSERT INTO headshift_copies (migration_id, tenant, from_cluster, to_cluster, layout, report) "
                    "VALUES ($1, $2, $3, $4, 'split', $5::jsonb)",
                    {ref.migration_id, ref.tenant, ref.from, ref.to, rep.ToJson().dump()});
  if (!h.ok()) return h.status().WithContext("recording the copy");
  HS_RETURN_IF_ERROR(ttx.Commit());
  (void)stx.Commit();  // read-only snapshot
  rep.elapsed_ms = MsSince(t0);
  return rep;
}

}  // namespace headshift::migrate
