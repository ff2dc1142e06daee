#include "migrate/verifier.h"

#include <chrono>
#include <map>
#include <set>

#include "migrate/copy_state.h"
#include "migrate/pg_copy.h"
#include "migrate/pg_tx.h"
#include "migrate/recorded_copy.h"
#include "migrate/retirer.h"
#include "migrate/row_drift.h"
#include "migrate/row_hashes.h"

namespace headshift::migrate {
namespace {

using Sums = std::map<std::string, std::pair<int64_t, std::string>>;

Sums ReadSums(const PgResult& r) {
  Sums s;
  for (int i = 0; i < r.rows(); ++i) s[r.Get(i, 0)] = {r.GetInt(i, 1), r.Get(i, 2)};
  return s;
}

// A difference on the target side. Before the cut nothing may write to the copy (a mismatch); after it,
// the target serves the tenant and writes (reported, not a failure).
void AddTargetIssue(RowIssue issue, TableVerify& tv, VerifyReport& rep) {
  if (rep.after_cut) {
    rep.target_writes.push_back(std::move(issue));
    ++tv.target_writes;
  } else {
    rep.mismatches.push_back(std::move(issue));
    ++tv.mismatches;
  }
}

std::string RecordedSums(const RowSql& sql, const std::string& mig) {
  return "SELECT tbl, count(*), COALESCE(sum(row_hash), 0)::text FROM headshift_copy_rows WHERE migration_id = " +
         sql.Literal(mig) + " GROUP BY tbl";
}

// Target side of the recorded rows, per table, in one statement.
std::string TargetSums(const RowSql& sql, const TenantSchema& s, const std::string& mig) {
  std::string q;
  for (const auto& t : s.tables()) {
    q += std::string(q.empty() ? "" : " UNION ALL ") + "SELECT " + sql.Literal(t.name) + "::text, count(*), COALESCE(sum(" +
         sql.RawHash(t, "t") + "), 0)::text FROM " + sql.Ident(t.name) + " t JOIN headshift_copy_rows s ON s.target_id = t." +
         sql.Ident(t.pk) + " AND s.migration_id = " + sql.Literal(mig) + " AND s.tbl = " + sql.Literal(t.name);
  }
  return q;
}

// A table's row count and checksum on the target and as recorded at the last sync.
TableVerify TargetAndRecorded(const std::string& table, Sums& t_sums, const Sums& r_sums) {
  TableVerify tv;
  tv.table = table;
  tv.target_rows = t_sums[table].first;
  tv.target_checksum = t_sums[table].second;
  auto rit = r_sums.find(table);
  tv.copied_rows = rit == r_sums.end() ? 0 : rit->second.first;
  tv.copy_checksum = rit == r_sums.end() ? "0" : rit->second.second;
  return tv;
}

// The recorded rows, read on first use: only tables whose sums differ are compared row by row.
class RecordedRows {
 public:
  RecordedRows(PgConn& conn, const std::string& migration_id) : conn_(conn), migration_id_(migration_id) {}

  StatusOr<const std::map<int64_t, CopyRow>*> Of(const std::string& table) {
    if (!loaded_) {
      auto r = ReadCopyRows(conn_, migration_id_);
      if (!r.ok()) return r.status();
      rows_ = std::move(*r);
      loaded_ = true;
    }
    return &rows_[table];
  }

 private:
  PgConn& conn_;
  const std::string migration_id_;
  std::map<std::string, std::map<int64_t, CopyRow>> rows_;
  bool loaded_ = false;
};

}  // namespace

StatusOr<VerifyReport> Verifier::Verify(const MoveRef& ref, const VerifyOptions& opts, VerifyReport* detail) {
  auto t0 = std::chrono::steady_clock::now();
  ClusterDatabases& dbs = ctx_.dbs();
  HS_RETURN_IF_ERROR(dbs.CheckKnown(ref.from, "source"));
  HS_RETURN_IF_ERROR(dbs.CheckKnown(ref.to, "target"));
  VerifyReport rep;
  rep.ref = ref;
  rep.layout = dbs.shared() ? "shared" : "split";
  Status st = dbs.shared() ? VerifyShared(ref, rep) : VerifySplit(ref, rep);
  rep.elapsed_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  if (!st.ok()) {
    if (detail) *detail = rep;
    return st;
  }
  rep.ok = rep.mismatches.empty();
  if (!rep.ok) {
    std::string what;
    for (size_t i = 0; i < rep.mismatches.size() && i < 5; ++i) {
      const auto& m = rep.mismatches[i];
      what += (i ? ", " : "") + m.table + " " + std::to_string(m.target_id) + " " + m.what;
    }
    if (rep.mismatches.size() > 5) what += " and " + std::to_string(rep.mismatches.size() - 5) + " more";
    std::string undone_msg;
    if (opts.undo_on_mismatch) {
      Retirer retirer(ctx_);
      RollbackOptions ro;
      ro.discard_target_changes = true;  // the target copy is wrong: nothing there is worth keeping
      auto rb = retirer.Rollback(ref, ro);
      rep.undone = rb.ok();
      undone_msg = rb.ok() ? "; the copy was undone" : "; undoing the copy failed too: " + rb.status().ToString();
    }
    if (detail) *detail = rep;
    Status fail = Status::Failed("verification of migration " + ref.migration_id + " found " +
                                     std::to_string(rep.mismatches.size()) + " mismatching row(s): " + what + undone_msg,
                                 rep.undone ? "find what wrote to the copied rows, then migrate again"
                                            : "roll back the migration (`headshift rollback " + ref.migration_id + "`)");
    if (opts.undo_on_mismatch && !rep.undone) {
      return Status::NeedsOperator(fail.message(), fail.hint());
    }
    return fail;
  }
  if (detail) *detail = rep;
  return rep;
}

Status Verifier::VerifySplit(const MoveRef& ref, VerifyReport& rep) {
  auto rc = OpenRequiredCopy(ctx_, ref);
  if (!rc.ok()) return rc.status();
  const CopyHeader& header = *rc->header;
  if (header.retiring || header.retired) {
    return Status::BadInput("migration " + ref.migration_id + " was retired: the source rows are gone, nothing to verify");
  }
  const TenantSchema& ss = *rc->source.schema;
  const TenantSchema& ts = *rc->target.schema;
  PgConn& src = *rc->source.conn;
  PgConn& tgt = *rc->target.conn;
  auto maps = ReadRemaps(tgt, ref.migration_id);
  if (!maps.ok()) return maps.status();
  RowSql ssql(src, ss);
  RowSql tsql(tgt, ts);
  const TenantSelector src_sel = ctx_.Selector(ref.tenant, ref.from, header);
  const TenantSelector tgt_sel = ctx_.Selector(ref.tenant, ref.to, header);
  rep.after_cut = header.caught_up;

  // Both sides at once: the source in one snapshot, the target (recorded rows + recorded hashes).
  PgTx stx(src);
  HS_RETURN_IF_ERROR(stx.Begin("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"));
  std::string src_q;
  for (const auto& t : ss.tables()) {
    src_q += std::string(src_q.empty() ? "" : " UNION ALL ") + "SELECT " + ssql.Literal(t.name) + "::text, count(*), "
             "COALESCE(sum(" + ssql.MappedHash(t, "t", *maps, ref.to) + "), 0)::text FROM " + ssql.Ident(t.name) + " t" +
             ssql.MapJoins(t, "t", *maps) + " WHERE " + ssql.MemberPredicate(t, "t", src_sel);
  }
  HS_RETURN_IF_ERROR(SendQuery(src, src_q));
  auto tr = tgt.Exec(TargetSums(tsql, ts, ref.migration_id));
  auto rr = tgt.Exec(RecordedSums(tsql, ref.migration_id));
  // The tenant's rows on the target, however written: more than the recorded ones present = extras.
  std::string member_q;
  for (const auto& t : ts.tables()) {
    member_q += std::string(member_q.empty() ? "" : " UNION ALL ") + "SELECT " + tsql.Literal(t.name) +
                "::text, count(*), '' FROM " + tsql.Ident(t.name) + " t WHERE " + tsql.MemberPredicate(t, "t", tgt_sel);
  }
  auto mr = tgt.Exec(member_q);
  auto sr = AwaitResult(src);
  if (!tr.ok()) return tr.status().WithContext("checksumming the target");
  if (!rr.ok()) return rr.status().WithContext("reading the recorded checksums");
  if (!mr.ok()) return mr.status().WithContext("counting the tenant's rows on the target");
  if (!sr.ok()) return sr.status().WithContext("checksumming the source");
  Sums s_sums = ReadSums(*sr), t_sums = ReadSums(*tr), r_sums = ReadSums(*rr), m_sums = ReadSums(*mr);

  RecordedRows recorded(tgt, ref.migration_id);
  for (const auto& t : ss.tables()) {
    TableVerify tv = TargetAndRecorded(t.name, t_sums, r_sums);
    tv.source_rows = s_sums[t.name].first;
    tv.source_checksum = s_sums[t.name].second;
    if (m_sums[t.name].first != tv.target_rows) {
      auto extras = TargetExtras(tgt, tsql, *ts.Find(t.name), tgt_sel, ref.migration_id);
      if (!extras.ok()) return extras.status();
      for (int64_t id : *extras) AddTargetIssue({t.name, 0, id, "extra on target (not written by the copy)"}, tv, rep);
    }
    bool same = tv.source_rows == tv.copied_rows && tv.source_checksum == tv.copy_checksum &&
                tv.target_rows == tv.copied_rows && tv.target_checksum == tv.copy_checksum;
    if (!same) {
      // Row by row: which side moved?
      auto rec = recorded.Of(t.name);
      if (!rec.ok()) return rec.status();
      auto s_now = SourceHashes(src, ssql, t, src_sel, *maps, ref.to);
      if (!s_now.ok()) return s_now.status();
      auto t_now = TargetHashes(tgt, tsql, *ts.Find(t.name), ref.migration_id);
      if (!t_now.ok()) return t_now.status();
      const std::vector<RowDrift> drift = DiffRecordedRows(**rec, &*s_now, &*t_now);
      for (const RowDrift& d : drift) {
        if (d.target == Drift::kGone) AddTargetIssue({t.name, d.source_id, d.target_id, "missing on target"}, tv, rep);
        else if (d.target == Drift::kChanged) AddTargetIssue({t.name, d.source_id, d.target_id, "changed on target"}, tv, rep);
      }
      auto late_write = [&](const RowDrift& d, const char* what) {
        rep.late_writes.push_back({t.name, d.source_id, d.target_id, what});
        ++tv.late_writes;
      };
      // Recorded rows first, then the new ones (each in source-id order).
      for (const RowDrift& d : drift) {
        if (d.source == Drift::kGone) late_write(d, "deleted on source");
        else if (d.source == Drift::kChanged) late_write(d, "changed on source");
      }
      for (const RowDrift& d : drift) {
        if (d.source == Drift::kNew) late_write(d, "new on source");
      }
    }
    rep.tables.push_back(tv);
  }
  (void)stx.Commit();
  return Status::Ok();
}

Status Verifier::VerifyShared(const MoveRef& ref, VerifyReport& rep) {
  auto rc = OpenRequiredCopy(ctx_, ref);
  if (!rc.ok()) return rc.status();
  const TenantSchema& s = *rc->source.schema;
  PgConn& c = *rc->source.conn;
  const CopyHeader& header = *rc->header;
  if (header.retired) return Status::BadInput("migration " + ref.migration_id + " was retired; nothing to verify");
  RowSql sql(c, s);
  const TenantSelector at_target = ctx_.Selector(ref.tenant, ref.to, header);
  rep.after_cut = header.caught_up;
  PgTx tx(c);
  HS_RETURN_IF_ERROR(tx.Begin("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"));
  auto tr = c.Exec(TargetSums(sql, s, ref.migration_id));
  if (!tr.ok()) return tr.status().WithContext("checksumming the moved rows");
  auto rr = c.Exec(RecordedSums(sql, ref.migration_id));
  if (!rr.ok()) return rr.status().WithContext("reading the recorded checksums");
  Sums t_sums = ReadSums(*tr), r_sums = ReadSums(*rr);
  RecordedRows recorded(c, ref.migration_id);
  for (const auto& t : s.tables()) {
    TableVerify tv = TargetAndRecorded(t.name, t_sums, r_sums);
    // The source side of a shared move is the same rows, as they were before the move.
    tv.source_rows = tv.copied_rows;
    tv.source_checksum = tv.copy_checksum;
    // Rows of the tenant still on the source cluster (written there after the move): catch-up moves them.
    if (t.has_cluster_column && !t.root) {
      auto late = c.Exec("SELECT t." + sql.Ident(t.pk) + " FROM " + sql.Ident(t.name) + " t WHERE " +
                         sql.MemberPredicate(t, "t", at_target) + " AND t." + sql.Ident(s.cluster_column()) + " = " +
                         sql.ClusterValue(ref.from) + " ORDER BY 1");
      if (!late.ok()) return late.status();
      for (int i = 0; i < late->rows(); ++i) {
        rep.late_writes.push_back({t.name, late->GetInt(i, 0), 0, "new on source"});
        ++tv.late_writes;
      }
    }
    if (tv.target_rows != tv.copied_rows || tv.target_checksum != tv.copy_checksum) {
      auto rec = recorded.Of(t.name);
      if (!rec.ok()) return rec.status();
      auto now = TargetHashes(c, sql, t, ref.migration_id);
      if (!now.ok()) return now.status();
      for (const RowDrift& d : DiffRecordedRows(**rec, nullptr, &*now)) {
        AddTargetIssue({t.name, d.source_id, d.target_id,
                        d.target == Drift::kGone ? "missing after the move" : "changed after the move"},
                       tv, rep);
      }
    }
    rep.tables.push_back(tv);
  }
  (void)tx.Commit();
  return Status::Ok();
}

}  // namespace headshift::migrate
