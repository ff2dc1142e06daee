#include "migrate/catch_up.h"

#include <algorithm>
#include <chrono>
#include <map>
#include <set>

#include "migrate/copy_state.h"
#include "migrate/headshift_tables.h"
#include "migrate/id_allocator.h"
#include "migrate/pg_copy.h"
#include "migrate/pg_tx.h"
#include "migrate/recorded_copy.h"
#include "migrate/row_drift.h"
#include "migrate/row_hashes.h"

namespace headshift::migrate {
namespace {

constexpr const char* kCopyTargetLock = "7228116712049151002";  // same lock as the copy

// Rows as JSON objects keyed by the first column (the id).
StatusOr<std::map<int64_t, nlohmann::json>> RowsAsJson(PgConn& c, const std::string& select_with_id_first) {
  auto r = c.Exec("SELECT x.*, row_to_json(x)::text FROM (" + select_with_id_first + ") x");
  if (!r.ok()) return r.status();
  std::map<int64_t, nlohmann::json> out;
  int json_col = r->cols() - 1;
  for (int i = 0; i < r->rows(); ++i) {
    out[r->GetInt(i, 0)] = nlohmann::json::parse(r->Get(i, json_col), nullptr, false);
  }
  return out;
}

// Fills c.differing_columns from the two versions, then masks the profile's credential columns: a
// conflict on a pre-auth key row must say that `key` differs without putting the key into the journal
// or on stdout. Values become "<secret, differs>" / "<secret, same>" (or "<secret>" when the other side
// is deleted); NULL stays NULL (it is no secret).
void DescribeConflict(const SchemaProfile& profile, CatchUpConflict& c) {
  nlohmann::json& s = c.source_version;
  nlohmann::json& t = c.target_version;
  const bool both = s.is_object() && t.is_object();
  if (both) {
    std::set<std::string> cols;
    for (const auto* v : {&s, &t}) {
      for (auto it = v->begin(); it != v->end(); ++it) cols.insert(it.key());
    }
    for (const auto& col : cols) {
      if (s.value(col, nlohmann::json()) != t.value(col, nlohmann::json())) c.differing_columns.push_back(col);
    }
  }
  for (auto* v : {&s, &t}) {
    if (!v->is_object()) continue;
    for (auto it = v->begin(); it != v->end(); ++it) {
      if (it.value().is_null() || !profile.IsSecretColumn(c.table, it.key())) continue;
      std::string marker = kSecretValue;
      if (both) {
        bool differs = std::find(c.differing_columns.begin(), c.differing_columns.end(), it.key()) !=
                       c.differing_columns.end();
        marker = differs ? "<secret, differs>" : "<secret, same>";
      }
      it.value() = marker;
    }
  }
}

struct Upsert {
  int64_t source_id;
  int64_t target_id;
};

}  // namespace

StatusOr<CatchUpReport> CatchUp::Run(const MoveRef& ref, ConflictPolicy policy) {
  auto t0 = std::chrono::steady_clock::now();
  ClusterDatabases& dbs = ctx_.dbs();
  HS_RETURN_IF_ERROR(dbs.CheckKnown(ref.from, "source"));
  HS_RETURN_IF_ERROR(dbs.CheckKnown(ref.to, "target"));
  CatchUpReport rep;
  rep.ref = ref;
  rep.layout = dbs.shared() ? "shared" : "split";
  Status st = dbs.shared() ? RunShared(ref, rep) : RunSplit(ref, policy, rep);
  if (!st.ok()) return st;
  rep.elapsed_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  return rep;
}

Status CatchUp::RunShared(const MoveRef& ref, CatchUpReport& rep) {
  auto rc = OpenRequiredCopy(ctx_, ref);
  if (!rc.ok()) return rc.status();
  const TenantSchema& s = *rc->source.schema;
  PgConn& c = *rc->source.conn;
  if (rc->header->retired) return Status::BadInput("migration " + ref.migration_id + " was retired; nothing to catch up");
  RowSql sql(c, s);
  const TenantSelector at_target = ctx_.Selector(ref.tenant, ref.to, *rc->header);
  const std::string mig = sql.Literal(ref.migration_id);
  PgTx tx(c);
  HS_RETURN_IF_ERROR(tx.Begin());
  for (const auto& t : s.tables()) {
    TableCatchUp tc;
    tc.table = t.name;
    if (t.has_cluster_column && !t.root) {
      // Rows of the tenant written on the source cluster after the move: move them as well.
      auto r = c.Exec("WITH moved AS (UPDATE " + sql.Ident(t.name) + " t SET " + sql.Ident(s.cluster_column()) + " = " +
                      sql.ClusterValue(ref.to) + " WHERE " + sql.MemberPredicate(t, "t", at_target) + " AND t." +
                      sql.Ident(s.cluster_column()) + " = " + sql.ClusterValue(ref.from) + " RETURNING t.*) "
                      "INSERT INTO headshift_copy_rows (migration_id, tbl, source_id, target_id, row_hash) SELECT " +
                      mig + ", " + sql.Literal(t.name) + ", t." + sql.Ident(t.pk) + ", t." + sql.Ident(t.pk) + ", " +
                      sql.RawHash(t, "t") + " FROM moved t ON CONFLICT (migration_id, tbl, source_id) DO UPDATE SET "
                      "row_hash = EXCLUDED.row_hash");
      if (!r.ok()) return r.status().WithContext("moving late " + t.name + " rows");
      tc.inserted = std::stoll(PQcmdTuples(r->get()));
    }
    // Rows changed since the move (by either instance): one copy, nothing to apply; refresh the record.
    auto u = c.Exec("UPDATE headshift_copy_rows s SET row_hash = " + sql.RawHash(t, "t") + " FROM " + sql.Ident(t.name) +
                    " t WHERE s.migration_id = " + mig + " AND s.tbl = " + sql.Literal(t.name) + " AND s.target_id = t." +
                    sql.Ident(t.pk) + " AND s.row_hash <> " + sql.RawHash(t, "t"));
    if (!u.ok()) return u.status().WithContext("refreshing the record of " + t.name);
    tc.target_only = std::stoll(PQcmdTuples(u->get()));
    rep.tables.push_back(tc);
  }
  auto mark = c.Exec("UPDATE headshift_copies SET caught_up_at = now() WHERE migration_id = " + mig);
  if (!mark.ok()) return mark.status();
  return tx.Commit();
}

Status CatchUp::RunSplit(const MoveRef& ref, ConflictPolicy policy, CatchUpReport& rep) {
  auto rc = OpenRequiredCopy(ctx_, ref);
  if (!rc.ok()) return rc.status();
  const CopyHeader& header = *rc->header;
  if (header.retiring || header.retired) {
    return Status::BadInput("migration " + ref.migration_id + " was retired; nothing to catch up");
  }
  const TenantSchema& ss = *rc->source.schema;
  const TenantSchema& ts = *rc->target.schema;
  PgConn& src = *rc->source.conn;
  PgConn& tgt = *rc->target.conn;
  RowSql ssql(src, ss);
  RowSql tsql(tgt, ts);
  const TenantSelector src_sel = ctx_.Selector(ref.tenant, ref.from, header);
  const std::string mig = tsql.Literal(ref.migration_id);

  PgTx stx(src);
  HS_RETURN_IF_ERROR(stx.Begin("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"));
  PgTx ttx(tgt);
  HS_RETURN_IF_ERROR(ttx.Begin());
  {
    auto l = tgt.Exec(std::string("SELECT pg_advisory_xact_lock(") + kCopyTargetLock + ")");
    if (!l.ok()) return l.status();
  }
  auto maps_or = ReadRemaps(tgt, ref.migration_id);
  if (!maps_or.ok()) return maps_or.status();
  IdMaps maps = std::move(*maps_or);
  auto rows_or = ReadCopyRows(tgt, ref.migration_id);
  if (!rows_or.ok()) return rows_or.status();
  auto& recorded = *rows_or;

  std::vector<std::pair<const TenantTable*, std::vector<int64_t>>> deletes;  // target ids, applied last
  for (const auto& t : ss.tables()) {
    const TenantTable& tt = *ts.Find(t.name);
    TableCatchUp tc;
    tc.table = t.name;
    auto& rec = recorded[t.name];
    auto s_now_or = SourceHashes(src, ssql, t, src_sel, maps, ref.to);
    if (!s_now_or.ok()) return s_now_or.status();
    const auto& s_now = *s_now_or;
    auto t_now_or = TargetHashes(tgt, tsql, tt, ref.migration_id);
    if (!t_now_or.ok()) return t_now_or.status();
    const auto& t_now = *t_now_or;

    std::vector<int64_t> changed, gone, added;  // source ids
    for (const RowDrift& d : DiffRecordedRows(rec, &s_now, &t_now)) {
      switch (d.source) {
        case Drift::kChanged: changed.push_back(d.source_id); break;
        case Drift::kGone: gone.push_back(d.source_id); break;
        case Drift::kNew: added.push_back(d.source_id); break;
        case Drift::kSame: ++tc.target_only; break;  // so the target side drifted
      }
    }

    // Lock the target rows the source changed, then decide row by row.
    std::vector<int64_t> lock_ids;
    for (int64_t sid : changed) lock_ids.push_back(rec[sid].target_id);
    for (int64_t sid : gone) lock_ids.push_back(rec[sid].target_id);
    std::map<int64_t, int64_t> t_locked;  // target id -> hash now
    if (!lock_ids.empty()) {
      auto r = tgt.Exec("SELECT t." + tsql.Ident(tt.pk) + ", " + tsql.RawHash(tt, "t") + " FROM " + tsql.Ident(tt.name) +
                        " t WHERE t." + tsql.Ident(tt.pk) + " = ANY(" + RowSql::IdArray(lock_ids) + ") FOR UPDATE");
      if (!r.ok()) return r.status().WithContext("locking " + t.name + " rows on the target");
      for (int i = 0; i < r->rows(); ++i) t_locked[r->GetInt(i, 0)] = r->GetInt(i, 1);
    }
    std::vector<Upsert> to_update, to_insert;   // written from the source
    std::vector<int64_t> to_delete_sids;        // deleted on the target
    std::vector<int64_t> forget_sids;           // record removed, no data change
    std::vector<std::pair<int64_t, int64_t>> rehash;  // source id -> hash to record without writing
    std::vector<CatchUpConflict> conflicts;
    for (int64_t sid : changed) {
      const CopyRow& r = rec[sid];
      auto ti = t_locked.find(r.target_id);
      int64_t sh = s_now.at(sid);
      if (ti != t_locked.end() && ti->second == r.hash) {
        to_update.push_back({sid, r.target_id});
      } else if (ti != t_locked.end() && ti->second == sh) {
        rehash.push_back({sid, sh});  // both sides made the same change
      } else {
        conflicts.push_back({t.name, sid, r.target_id,
                             ti == t_locked.end() ? "changed on source, deleted on target" : "changed on both sides",
                             nullptr, nullptr});
      }
    }
    for (int64_t sid : gone) {
      const CopyRow& r = rec[sid];
      auto ti = t_locked.find(r.target_id);
      if (ti == t_locked.end()) {
        forget_sids.push_back(sid);  // deleted on both sides
      } else if (ti->second == r.hash) {
        to_delete_sids.push_back(sid);
      } else {
        conflicts.push_back({t.name, sid, r.target_id, "deleted on source, changed on target", nullptr, nullptr});
      }
    }
    // Both versions of every conflict.
    if (!conflicts.empty()) {
      std::vector<int64_t> sids, tids;
      for (const auto& c : conflicts) {
        sids.push_back(c.source_id);
        tids.push_back(c.target_id);
      }
      std::vector<std::string> cols = ssql.ColumnNames(t);
      std::vector<std::string> exprs = ssql.MappedExprs(t, "t", maps, ref.to, cols);
      for (size_t i = 0; i < exprs.size(); ++i) exprs[i] += " AS " + ssql.Ident(cols[i]);
      auto s_rows = RowsAsJson(src, "SELECT s.* FROM (SELECT t." + ssql.Ident(t.pk) + " AS headshift_source_id, " +
                                        JoinStrings(exprs, ", ") + " FROM " +
                                        ssql.Ident(t.name) + " t" + ssql.MapJoins(t, "t", maps) + " WHERE t." +
                                        ssql.Ident(t.pk) + " = ANY(" + RowSql::IdArray(sids) + ")) s");
      if (!s_rows.ok()) return s_rows.status().WithContext("reading conflicting " + t.name + " rows on the source");
      auto t_rows = RowsAsJson(tgt, "SELECT t." + tsql.Ident(tt.pk) + " AS headshift_target_id, t.* FROM " +
                                        tsql.Ident(tt.name) + " t WHERE t." + tsql.Ident(tt.pk) + " = ANY(" +
                                        RowSql::IdArray(tids) + ")");
      if (!t_rows.ok()) return t_rows.status().WithContext("reading conflicting " + t.name + " rows on the target");
      for (auto& c : conflicts) {
        auto si = s_rows->find(c.source_id);
        auto ti = t_rows->find(c.target_id);
        c.source_version = si == s_rows->end() ? nlohmann::json(nullptr) : si->second;
        c.target_version = ti == t_rows->end() ? nlohmann::json(nullptr) : ti->second;
        for (auto* v : {&c.source_version, &c.target_version}) {
          if (v->is_object()) {
            v->erase("headshift_source_id");
            v->erase("headshift_target_id");
            v->erase("row_to_json");
          }
        }
        DescribeConflict(ctx_.profile(), c);
        const CopyRow& r = rec[c.source_id];
        bool source_deleted = !s_now.count(c.source_id);
        bool target_deleted = !t_locked.count(r.target_id);
        if (policy == ConflictPolicy::kSourceWins) {
          if (source_deleted) to_delete_sids.push_back(c.source_id);
          else if (target_deleted) to_insert.push_back({c.source_id, r.target_id});
          else to_update.push_back({c.source_id, r.target_id});
        } else if (policy == ConflictPolicy::kTargetWins) {
          if (source_deleted) forget_sids.push_back(c.source_id);
          else rehash.push_back({c.source_id, s_now.at(c.source_id)});
        }
      }
      tc.conflicts = static_cast<int64_t>(conflicts.size());
      for (auto& c : conflicts) rep.conflicts.push_back(std::move(c));
    }

    // New source rows: target ids kept when free, else fresh (their children map through them).
    if (!added.empty()) {
      std::sort(added.begin(), added.end());
      auto m = AllocateTargetIds(tgt, tsql, tt, added);
      if (!m.ok()) return m.status();
      std::map<int64_t, int64_t> fresh(m->begin(), m->end());
      for (int64_t sid : added) {
        auto it = fresh.find(sid);
        int64_t tid = it == fresh.end() ? sid : it->second;
        to_insert.push_back({sid, tid});
        if (tid != sid) {
          maps[t.name].push_back({sid, tid});
          rep.new_remaps[t.name].push_back({sid, tid});
        }
      }
    }

    // Stage the source rows to write, then update/insert from the stage.
    std::vector<int64_t> write_sids;
    for (const auto& u : to_update) write_sids.push_back(u.source_id);
    for (const auto& u : to_insert) write_sids.push_back(u.source_id);
    if (!write_sids.empty()) {
      const std::string stage = tsql.Ident("headshift_stage_" + t.name);
      HS_RETURN_IF_ERROR(tgt.ExecScript("CREATE TEMP TABLE IF NOT EXISTS " + stage + " (LIKE " + tsql.Ident(tt.name) +
                                        ") ON COMMIT DROP; TRUNCATE " + stage));
      std::vector<std::string> cols = tsql.ColumnNames(tt);
      std::string out = "COPY (" + ssql.MappedSelect(t, src_sel, maps, ref.to, cols, "t." + ssql.Ident(t.pk) + " = ANY(" +
                                                     RowSql::IdArray(write_sids) + ")") + ") TO STDOUT (FORMAT binary)";
      std::string in = "COPY " + stage + " (" + tsql.ColumnList(tt) + ") FROM STDIN (FORMAT binary)";
      auto sc = StreamCopy(src, out, tgt, in);
      if (!sc.ok()) return sc.status().WithContext("staging " + t.name + " (nothing was committed)");
      std::vector<std::string> sets;
      for (const auto& c : cols) {
        if (c != tt.pk) sets.push_back(tsql.Ident(c) + " = s." + tsql.Ident(c));
      }
      if (!to_update.empty()) {
        std::vector<int64_t> tids;
        for (const auto& u : to_update) tids.push_back(u.target_id);
        auto r = tgt.Exec("UPDATE " + tsql.Ident(tt.name) + " t SET " + JoinStrings(sets, ", ") + " FROM " + stage +
                          " s WHERE t." + tsql.Ident(tt.pk) + " = s." + tsql.Ident(tt.pk) + " AND t." + tsql.Ident(tt.pk) +
                          " = ANY(" + RowSql::IdArray(tids) + ")");
        if (!r.ok()) return r.status().WithContext("applying " + t.name + " changes");
        tc.updated = std::stoll(PQcmdTuples(r->get()));
      }
      if (!to_insert.empty()) {
        std::vector<int64_t> tids;
        for (const auto& u : to_insert) tids.push_back(u.target_id);
        auto r = tgt.Exec("INSERT INTO " + tsql.Ident(tt.name) + " (" + tsql.ColumnList(tt) + ") SELECT " +
                          tsql.ColumnList(tt) + " FROM " + stage + " WHERE " + tsql.Ident(tt.pk) + " = ANY(" +
                          RowSql::IdArray(tids) + ")");
        if (!r.ok()) return r.status().WithContext("inserting new " + t.name + " rows");
        tc.inserted = std::stoll(PQcmdTuples(r->get()));
      }
      // Record what was written: its target hash, which must equal the source row's.
      std::vector<int64_t> sids, tids;
      for (const auto& v : {to_update, to_insert}) {
        for (const auto& u : v) {
          sids.push_back(u.source_id);
          tids.push_back(u.target_id);
        }
      }
      auto r = tgt.Exec("WITH m AS (SELECT unnest(" + RowSql::IdArray(sids) + ") AS sid, unnest(" + RowSql::IdArray(tids) +
                        ") AS tid) INSERT INTO headshift_copy_rows (migration_id, tbl, source_id, target_id, row_hash) "
                        "SELECT " + mig + ", " + tsql.Literal(t.name) + ", m.sid, m.tid, " + tsql.RawHash(tt, "t") +
                        " FROM m JOIN " + tsql.Ident(tt.name) + " t ON t." + tsql.Ident(tt.pk) + " = m.tid "
                        "ON CONFLICT (migration_id, tbl, source_id) DO UPDATE SET target_id = EXCLUDED.target_id, "
                        "row_hash = EXCLUDED.row_hash RETURNING source_id, row_hash");
      if (!r.ok()) return r.status().WithContext("recording " + t.name + " changes");
      auto s_check = SourceHashes(src, ssql, t, src_sel, maps, ref.to);
      if (!s_check.ok()) return s_check.status();
      for (int i = 0; i < r->rows(); ++i) {
        auto it = s_check->find(r->GetInt(i, 0));
        if (it == s_check->end() || it->second != r->GetInt(i, 1)) {
          return Status::Failed("applied " + t.name + " row " + r->Get(i, 0) + " does not match its source row; "
                                "nothing was committed",
                                "a trigger or default on the target rewrites rows? compare the two schemas");
        }
      }
    }
    if (!rehash.empty()) {
      std::vector<int64_t> sids, hashes;
      for (const auto& [sid, h] : rehash) {
        sids.push_back(sid);
        hashes.push_back(h);
      }
      auto r = tgt.Exec("UPDATE headshift_copy_rows s SET row_hash = m.h FROM (SELECT unnest(" + RowSql::IdArray(sids) +
                        ") AS sid, unnest(" + RowSql::IdArray(hashes) + ") AS h) m WHERE s.migration_id = " + mig +
                        " AND s.tbl = " + tsql.Literal(t.name) + " AND s.source_id = m.sid");
      if (!r.ok()) return r.status();
    }
    std::vector<int64_t> forget = forget_sids;
    forget.insert(forget.end(), to_delete_sids.begin(), to_delete_sids.end());
    if (!forget.empty()) {
      auto r = tgt.Exec("DELETE FROM headshift_copy_rows WHERE migration_id = " + mig + " AND tbl = " +
                        tsql.Literal(t.name) + " AND source_id = ANY(" + RowSql::IdArray(forget) + ")");
      if (!r.ok()) return r.status();
    }
    if (!to_delete_sids.empty()) {
      std::vector<int64_t> tids;
      for (int64_t sid : to_delete_sids) tids.push_back(rec[sid].target_id);
      deletes.push_back({&tt, tids});
    }
    rep.tables.push_back(tc);
  }
  // Deletions last, children first.
  for (auto it = deletes.rbegin(); it != deletes.rend(); ++it) {
    auto r = tgt.Exec("DELETE FROM " + tsql.Ident(it->first->name) + " WHERE " + tsql.Ident(it->first->pk) + " = ANY(" +
                      RowSql::IdArray(it->second) + ")");
    if (!r.ok()) return r.status().WithContext("deleting " + it->first->name + " rows removed on the source");
    for (auto& tc : rep.tables) {
      if (tc.table == it->first->name) tc.deleted = std::stoll(PQcmdTuples(r->get()));
    }
  }
  auto mark = tgt.Exec("UPDATE headshift_copies SET caught_up_at = now() WHERE migration_id = " + mig);
  if (!mark.ok()) return mark.status();
  HS_RETURN_IF_ERROR(ttx.Commit());
  (void)stx.Commit();
  return Status::Ok();
}

}  // namespace headshift::migrate
