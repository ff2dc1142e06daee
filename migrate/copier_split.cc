// Copier::CopySplit: the split layout (each cluster its own database): ids planned on the target,
// rows streamed with COPY, the copy record written in the same transactions.
#include "migrate/copier.h"

#include "migrate/copier_internal.h"

namespace headshift::migrate {
using namespace copier_internal;  // NOLINT: the copier's own internals

StatusOr<CopyReport> Copier::CopySplit(const MoveRef& ref, const CopyOptions& opts) {
  auto t0 = std::chrono::steady_clock::now();
  auto tp = t0;
  std::vector<std::pair<std::string, double>> phases;
  auto phase = [&](const char* name) {
    phases.push_back({name, MsSince(tp)});
    tp = std::chrono::steady_clock::now();
  };
  ClusterDatabases& dbs = ctx_.dbs();
  // A second source connection computes the per-row record while the main one streams; open it now.
  auto recorder_future = dbs.DedicatedAsync(ref.from);
  HS_RETURN_IF_ERROR(ctx_.Prefetch({ref.from, ref.to}));
  phase("catalogs");
  auto ssp = ctx_.Schema(ref.from);
  if (!ssp.ok()) return ssp.status();
  auto tsp = ctx_.Schema(ref.to);
  if (!tsp.ok()) return tsp.status();
  const TenantSchema& ss = **ssp;
  const TenantSchema& ts = **tsp;
  HS_RETURN_IF_ERROR(ctx_.CheckClusterValue(ss, ref.to));
  auto tcat = ctx_.CatalogOf(ref.to);
  if (!tcat.ok()) return tcat.status();
  {
    auto sc = ctx_.CatalogOf(ref.from);
    if (!sc.ok()) return sc.status();
    std::string drift = SchemaDrift(ctx_.profile(), **sc, **tcat);
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
  auto recorder_conn = recorder_future.get();
  if (!recorder_conn.ok()) return recorder_conn.status();
  RowSql ssql(src, ss);
  RowSql tsql(tgt, ts);
  const TenantSelector src_sel = ctx_.Selector(ref.tenant, ref.from);
  const int src_pid = PQbackendPID(src.raw());
  const int tgt_pid = PQbackendPID(tgt.raw());

  PgTx stx(src);
  HS_RETURN_IF_ERROR(stx.Begin("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"));
  auto snap = src.Exec("SELECT pg_export_snapshot()");
  if (!snap.ok()) return snap.status().WithContext("exporting the source snapshot");
  const std::string snapshot = snap->Get(0, 0);
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
  phase("begin");
  // Values the target cluster took since preflight (headscale allocates IPs and names in memory): the
  // source snapshot's values against the target, before the first write. It runs beside the id listing
  // below (which uses only `src`) as one statement per side, at once: the tenant's key hashes on the
  // recorder connection (which joins the exported snapshot now and keeps it for the record) and the target
  // cluster's on the target connection (idle until the ids are allocated). The hashes are compared here;
  // only when some meet does the exact check (the one plan runs) name the clashes, or find none.
  PgConn& rconn = **recorder_conn;
  const std::string snapshot_sql = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SET TRANSACTION SNAPSHOT " +
                                   ssql.Literal(snapshot);
  HS_RETURN_IF_ERROR(rconn.ExecScript(snapshot_sql));
  const TargetCollisions::HashQueries hashes =
      TargetCollisions(ctx_, CopySides(ref, rconn, ss, src_sel, tgt, ts, /*same_table=*/false)).BuildHashQueries();
  StatusOr<PgResult> values_hashes = PgResult();
  StatusOr<PgResult> target_hashes = PgResult();
  std::thread values_hasher, target_hasher;
  Joiner values_joiner{values_hasher}, target_joiner{target_hasher};  // also on early returns: they use rconn, tgt
  if (!hashes.values_sql.empty()) {
    values_hasher = std::thread([&] { values_hashes = rconn.Exec(hashes.values_sql); });
    target_hasher = std::thread([&] { target_hashes = tgt.Exec(hashes.target_sql); });
  }

  // Ids: one round trip for every table's source ids; keep the free ones, remap the taken ones.
  CopyReport rep;
  rep.ref = ref;
  rep.layout = "split";
  rep.owned_tags = src_sel.owned_tags;
  // Every table's member ids and references into other tenant tables.
  std::map<std::string, std::vector<int64_t>> src_ids;
  std::map<std::string, std::vector<std::pair<const TableLink*, std::vector<int64_t>>>> src_refs;
  for (const auto& t : ss.tables()) {
    std::string q = "SELECT t." + ssql.Ident(t.pk) + "::bigint";
    for (const auto& l : t.tenant_refs) q += ", t." + ssql.Ident(l.column) + "::bigint";
    auto r = src.Exec(q + " FROM " + ssql.Ident(t.name) + " t WHERE " + ssql.MemberPredicate(t, "t", src_sel) + " ORDER BY 1");
    if (!r.ok()) return r.status().WithContext("listing " + t.name + " of tenant " + ref.tenant);
    auto& ids = src_ids[t.name];
    ids.reserve(r->rows());
    for (int i = 0; i < r->rows(); ++i) ids.push_back(r->GetInt(i, 0));
    for (size_t k = 0; k < t.tenant_refs.size(); ++k) {
      std::vector<int64_t> vals;
      for (int i = 0; i < r->rows(); ++i) {
        if (!r->IsNull(i, static_cast<int>(k) + 1)) vals.push_back(r->GetInt(i, static_cast<int>(k) + 1));
      }
      src_refs[t.name].push_back({&t.tenant_refs[k], std::move(vals)});
    }
  }
  if (src_ids[ss.root().name].empty()) {
    return Status::Refused("tenant " + ref.tenant + " does not exist on cluster " + ref.from,
                           "check the tenant name and the source cluster (`headshift plan`)");
  }
  // Tenant rows pointing at rows of another tenant would point at unrelated rows on the target (preflight
  // refuses them; this re-checks the snapshot actually copied). It also guarantees every copied reference
  // lands on a copied row, which is what lets the bulk path skip per-row foreign-key checks.
  {
    std::string dangling;
    for (const auto& [table, refs] : src_refs) {
      for (const auto& [link, vals] : refs) {
        const auto& parents = src_ids[link->ref_table];  // sorted
        int64_t n = 0;
        for (int64_t v : vals) n += std::binary_search(parents.begin(), parents.end(), v) ? 0 : 1;
        if (n) dangling += (dangling.empty() ? "" : ", ") + table + "." + link->column + ": " + std::to_string(n) + " row(s)";
      }
    }
    if (!dangling.empty()) {
      return Status::Refused("rows of tenant " + ref.tenant + " reference rows of another tenant (" + dangling +
                                 "); nothing was committed",
                             "run `headshift plan` (dangling_reference) and fix those rows first");
    }
  }
  phase("list_ids");
  if (values_hasher.joinable()) {
    values_hasher.join();
    target_hasher.join();
    if (!values_hashes.ok()) return values_hashes.status().WithContext("re-checking values on cluster " + ref.to);
    if (!target_hashes.ok()) return target_hashes.status().WithContext("re-checking values on cluster " + ref.to);
    auto meet = TargetCollisions::HashesMeet(*values_hashes, *target_hashes);
    if (!meet.ok()) return meet.status().WithContext("re-checking values on cluster " + ref.to);
    if (*meet) HS_RETURN_IF_ERROR(RefuseCollisions(ctx_, ref, rconn, ss, src_sel, tgt, ts, /*same_table=*/false));
  }
  phase("collisions");
  for (const auto& t : ss.tables()) {
    auto m = AllocateTargetIds(tgt, tsql, *ts.Find(t.name), src_ids[t.name]);
    if (!m.ok()) return m.status();
    if (!m->empty()) rep.remaps[t.name] = std::move(*m);
  }
  phase("allocate_ids");

  // The record (per row: source id, target id, hash of the mapped row) is computed from the same snapshot
  // on the second connection, in parallel with the stream.
  std::string record_sql;
  for (const auto& t : ss.tables()) {
    std::vector<std::string> pk_expr = ssql.MappedExprs(t, "t", rep.remaps, ref.to, {t.pk});
    record_sql += std::string(record_sql.empty() ? "" : " UNION ALL ") + "SELECT " + ssql.Literal(ref.migration_id) +
                  "::text, " + ssql.Literal(t.name) + "::text, t." + ssql.Ident(t.pk) + "::bigint, (" + pk_expr[0] +
                  ")::bigint, " + ssql.MappedHash(t, "t", rep.remaps, ref.to) + " FROM " + ssql.Ident(t.name) + " t" +
                  ssql.MapJoins(t, "t", rep.remaps) + " WHERE " + ssql.MemberPredicate(t, "t", src_sel);
  }
  const std::string record_out = "COPY (" + record_sql + ") TO STDOUT (FORMAT binary)";
  Status record_status;
  std::string record_data;
  std::thread recorder([&] {
    auto data = CopyOutToBuffer(rconn, record_out);
    if (!data.ok()) {
      record_status = data.status();
      return;
    }
    record_data = std::move(*data);
    (void)rconn.ExecScript("COMMIT");
  });
  Joiner joiner{recorder};

  // Foreign keys: checked per row by PostgreSQL's triggers, or — when allowed and nothing else hangs off
  // the tables — once per foreign key after the load (as logical replication applies rows), which is
  // several times cheaper. Every copied reference points at a row copied in this transaction or at a row
  // locked FOR KEY SHARE below, so the result is the same.
  bool bulk_fk = !opts.per_row_fk_checks;
  for (const auto& t : ts.tables()) {
    const TableInfo* info = (*tcat)->Find(t.name);
    if (t.has_user_triggers || !info) bulk_fk = false;
    for (const auto& fk : info ? info->foreign_keys : std::vector<ForeignKey>{}) {
      if (fk.columns.size() != 1) bulk_fk = false;
    }
  }
  if (bulk_fk) {
    HS_RETURN_IF_ERROR(tgt.ExecScript("SAVEPOINT headshift_fk"));
    if (tgt.ExecScript("SET LOCAL session_replication_role = replica").ok()) {
      HS_RETURN_IF_ERROR(tgt.ExecScript("RELEASE SAVEPOINT headshift_fk"));
    } else {
      HS_RETURN_IF_ERROR(tgt.ExecScript("ROLLBACK TO SAVEPOINT headshift_fk"));
      bulk_fk = false;  // the role may not set it: per-row checks
    }
  }
  rep.fk_checks = bulk_fk ? "bulk" : "triggers";

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
  phase("stream");

  // The record joins the copy in the same transaction.
  recorder.join();
  if (!record_status.ok()) return record_status.WithContext("recording the copy (nothing was committed)");
  auto loaded = CopyInFromBuffer(tgt, "COPY headshift_copy_rows (migration_id, tbl, source_id, target_id, row_hash) "
                                      "FROM STDIN (FORMAT binary)", record_data);
  if (!loaded.ok()) return loaded.status().WithContext("recording the copy (nothing was committed)");
  int64_t expected = 0;
  for (const auto& tc : rep.tables) expected += tc.rows;
  if (*loaded != expected) {
    return Status::Failed("recorded " + std::to_string(*loaded) + " rows but copied " + std::to_string(expected) +
                          "; nothing was committed");
  }
  phase("record");
  if (bulk_fk) {
    HS_RETURN_IF_ERROR(tgt.ExecScript("SET LOCAL session_replication_role = origin"));
    const std::string mig = tsql.Literal(ref.migration_id);
    for (const auto& t : ts.tables()) {
      if (src_ids[t.name].empty()) continue;
      // The copied rows: joined through the record loaded above.
      const std::string copied = " FROM headshift_copy_rows s JOIN " + tsql.Ident(t.name) + " c ON c." + tsql.Ident(t.pk) +
                                 " = s.target_id WHERE s.migration_id = " + mig + " AND s.tbl = " + tsql.Literal(t.name);
      for (const auto& fk : (*tcat)->Find(t.name)->foreign_keys) {
        // References into tenant tables land on rows copied in this transaction by construction (listing
        // check above, same id map for parents and children): nothing to look up.
        if (ts.Find(fk.ref_table)) continue;
        const std::string col = "c." + tsql.Ident(fk.columns[0]);
        const std::string ref_t = tsql.Ident(fk.ref_table), ref_c = "r." + tsql.Ident(fk.ref_columns[0]);
        {
          // A table that does not move: keep the referenced rows from being deleted until we commit.
          auto lock = tgt.Exec("SELECT count(*) FROM (SELECT 1 FROM " + ref_t + " r WHERE " + ref_c + " IN (SELECT " + col +
                               copied + ") FOR KEY SHARE OF r) x");
          if (!lock.ok()) return lock.status().WithContext("locking rows referenced by " + t.name);
        }
        auto r = tgt.Exec("SELECT count(*)" + copied + " AND " + col + " IS NOT NULL AND NOT EXISTS (SELECT 1 FROM " +
                          ref_t + " r WHERE " + ref_c + " = " + col + ")");
        if (!r.ok()) return r.status().WithContext("checking foreign key " + fk.name);
        if (r->Get(0, 0) != "0") {
          return Status::Failed(r->Get(0, 0) + " copied " + t.name + " row(s) violate foreign key " + fk.name +
                                    "; nothing was committed",
                                "run `headshift plan`: a dangling reference on the source?");
        }
      }
    }
    phase("fk_checks");
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
  phase("commit");
  rep.phases_ms = phases;
  rep.elapsed_ms = MsSince(t0);
  return rep;
}

}  // namespace headshift::migrate
