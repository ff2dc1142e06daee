#include "migrate/retirer.h"

#include "migrate/copy_state.h"
#include "migrate/headshift_tables.h"
#include "migrate/pg_tx.h"
#include "migrate/recorded_copy.h"
#include "migrate/row_drift.h"
#include "migrate/row_hashes.h"

namespace headshift::migrate {
namespace {

Status CheckRef(ClusterDatabases& dbs, const MoveRef& ref) {
  HS_RETURN_IF_ERROR(dbs.CheckKnown(ref.from, "source"));
  HS_RETURN_IF_ERROR(dbs.CheckKnown(ref.to, "target"));
  if (ref.migration_id.empty()) return Status::BadInput("the migration id is empty");
  return Status::Ok();
}

std::string Sample(const std::vector<std::string>& v) {
  std::string s;
  for (size_t i = 0; i < v.size() && i < 5; ++i) s += (i ? ", " : "") + v[i];
  if (v.size() > 5) s += " and " + std::to_string(v.size() - 5) + " more";
  return s;
}

}  // namespace

StatusOr<RetireReport> Retirer::Retire(const MoveRef& ref, bool archive) {
  HS_RETURN_IF_ERROR(CheckRef(ctx_.dbs(), ref));
  ClusterDatabases& dbs = ctx_.dbs();
  RetireReport rep;
  rep.ref = ref;
  auto tgtp = dbs.Conn(ref.to);
  if (!tgtp.ok()) return tgtp.status();
  PgConn& tgt = **tgtp;
  auto header = ReadCopyHeader(tgt, ref.migration_id);
  if (!header.ok()) return header.status();
  if (!*header) {
    return Status::BadInput("no copy recorded for migration " + ref.migration_id + " on cluster " + ref.to,
                            "retire only a migration whose copy succeeded (see `headshift status`)");
  }
  HS_RETURN_IF_ERROR(CheckHeaderMatches(**header, ref.tenant, ref.from, ref.to));
  if ((*header)->retired) {
    rep.already_retired = true;
    return rep;
  }
  auto mark = [&](const std::string& column) -> Status {
    auto r = tgt.Exec("UPDATE headshift_copies SET " + column + " = now() WHERE migration_id = $1", {ref.migration_id});
    return r.ok() ? Status::Ok() : r.status().WithContext("marking the copy " + column);
  };
  if (dbs.shared()) {
    // The rows moved with the copy: nothing stays behind on the source.
    PgTx tx(tgt);
    HS_RETURN_IF_ERROR(tx.Begin());
    HS_RETURN_IF_ERROR(mark("retired_at"));
    auto d = tgt.Exec("DELETE FROM headshift_copy_rows WHERE migration_id = $1", {ref.migration_id});
    if (!d.ok()) return d.status();
    HS_RETURN_IF_ERROR(tx.Commit());
    return rep;
  }

  auto ssp = ctx_.Schema(ref.from);
  if (!ssp.ok()) return ssp.status();
  const TenantSchema& ss = **ssp;
  auto srcp = dbs.Conn(ref.from);
  if (!srcp.ok()) return srcp.status();
  PgConn& src = **srcp;
  RowSql sql(src, ss);
  const TenantSelector sel = ctx_.Selector(ref.tenant, ref.from, **header);

  if (!(*header)->retiring) {
    // Source changes that catch-up has not applied would be lost.
    auto maps = ReadRemaps(tgt, ref.migration_id);
    if (!maps.ok()) return maps.status();
    auto rows = ReadCopyRows(tgt, ref.migration_id);
    if (!rows.ok()) return rows.status();
    std::vector<std::string> pending;
    for (const auto& t : ss.tables()) {
      auto now = SourceHashes(src, sql, t, sel, *maps, ref.to);
      if (!now.ok()) return now.status();
      const std::vector<RowDrift> drift = DiffRecordedRows((*rows)[t.name], &*now, nullptr);
      auto add = [&](const RowDrift& d, const char* what) {
        pending.push_back(t.name + " " + std::to_string(d.source_id) + what);
      };
      // New and changed rows first, then the deleted ones (each in source-id order).
      for (const RowDrift& d : drift) {
        if (d.source == Drift::kNew) add(d, " (new)");
        else if (d.source == Drift::kChanged) add(d, " (changed)");
      }
      for (const RowDrift& d : drift) {
        if (d.source == Drift::kGone) add(d, " (deleted)");
      }
    }
    rep.pending_late_writes = static_cast<int64_t>(pending.size());
    if (!pending.empty() && !archive) {
      return Status::Refused(std::to_string(pending.size()) + " change(s) reached the source after the last sync (" +
                                 Sample(pending) + "); retiring would lose them",
                             "run catch-up first, or retire with archive to keep the source rows");
    }
    HS_RETURN_IF_ERROR(mark("retiring_at"));
  }

  PgTx tx(src);
  HS_RETURN_IF_ERROR(tx.Begin());
  if (archive) {
    rep.archive_schema = kArchiveSchema;
    const std::string schema = sql.Ident(kArchiveSchema);
    HS_RETURN_IF_ERROR(src.ExecScript("CREATE SCHEMA IF NOT EXISTS " + schema));
    auto cat = ctx_.CatalogOf(ref.from);
    if (!cat.ok()) return cat.status();
    for (const auto& t : ss.tables()) {
      const std::string arch = schema + "." + sql.Ident(t.name);
      HS_RETURN_IF_ERROR(src.ExecScript(
          "CREATE TABLE IF NOT EXISTS " + arch + " (LIKE " + sql.Ident((*cat)->schema) + "." + sql.Ident(t.name) +
          "); ALTER TABLE " + arch + " ADD COLUMN IF NOT EXISTS headshift_migration_id text, "
          "ADD COLUMN IF NOT EXISTS headshift_archived_at timestamptz"));
      auto r = src.Exec("INSERT INTO " + arch + " (" + sql.ColumnList(t) + ", headshift_migration_id, headshift_archived_at) "
                        "SELECT " + sql.ColumnList(t) + ", " + sql.Literal(ref.migration_id) + ", now() FROM " +
                        sql.Ident(t.name) + " WHERE " + sql.MemberPredicate(t, sql.Ident(t.name), sel));
      if (!r.ok()) {
        return r.status().WithContext("archiving " + t.name).WithContext(
            "retire (nothing was removed; an older archive table with other columns? rename headshift_archive." +
            t.name + ")");
      }
    }
  }
  for (auto it = ss.tables().rbegin(); it != ss.tables().rend(); ++it) {
    auto r = src.Exec("DELETE FROM " + sql.Ident(it->name) + " WHERE " + sql.MemberPredicate(*it, sql.Ident(it->name), sel));
    if (!r.ok()) return r.status().WithContext("removing " + it->name + " from cluster " + ref.from + " (nothing was removed)");
    rep.deleted.insert(rep.deleted.begin(), {it->name, std::stoll(PQcmdTuples(r->get()))});
  }
  HS_RETURN_IF_ERROR(tx.Commit());

  PgTx ttx(tgt);
  HS_RETURN_IF_ERROR(ttx.Begin());
  HS_RETURN_IF_ERROR(mark("retired_at"));
  auto d = tgt.Exec("DELETE FROM headshift_copy_rows WHERE migration_id = $1", {ref.migration_id});
  if (!d.ok()) return d.status();
  auto rj = tgt.Exec("UPDATE headshift_copies SET report = report || jsonb_build_object('retire', $2::jsonb) "
                     "WHERE migration_id = $1",
                     {ref.migration_id, rep.ToJson().dump()});
  if (!rj.ok()) return rj.status();
  HS_RETURN_IF_ERROR(ttx.Commit());
  return rep;
}

StatusOr<RollbackReport> Retirer::Rollback(const MoveRef& ref, const RollbackOptions& opts) {
  HS_RETURN_IF_ERROR(CheckRef(ctx_.dbs(), ref));
  return ctx_.dbs().shared() ? RollbackShared(ref) : RollbackSplit(ref, opts);
}

StatusOr<RollbackReport> Retirer::RollbackShared(const MoveRef& ref) {
  RollbackReport rep;
  rep.ref = ref;
  rep.layout = "shared";
  auto rc = OpenRecordedCopy(ctx_, ref);
  if (!rc.ok()) return rc.status();
  const TenantSchema& s = *rc->source.schema;
  PgConn& c = *rc->source.conn;
  if (!rc->header) {
    rep.nothing_to_do = true;
    return rep;
  }
  if (rc->header->retired) {
    return Status::NeedsOperator("migration " + ref.migration_id + " was completed (retired); it cannot be rolled back",
                                 "move the tenant back with a new migration");
  }
  RowSql sql(c, s);
  const TenantSelector at_target = ctx_.Selector(ref.tenant, ref.to, *rc->header);
  PgTx tx(c);
  HS_RETURN_IF_ERROR(tx.Begin());
  // Children first: their membership follows the root, which must still be on the target meanwhile.
  for (auto it = s.tables().rbegin(); it != s.tables().rend(); ++it) {
    if (!it->has_cluster_column) continue;
    auto r = c.Exec("UPDATE " + sql.Ident(it->name) + " t SET " + sql.Ident(s.cluster_column()) + " = " +
                    sql.ClusterValue(ref.from) + " WHERE " + sql.MemberPredicate(*it, "t", at_target) + " AND t." +
                    sql.Ident(s.cluster_column()) + " IS DISTINCT FROM " + sql.ClusterValue(ref.from));
    if (!r.ok()) return r.status().WithContext("moving " + it->name + " back (nothing was changed)");
    rep.rows.insert(rep.rows.begin(), {it->name, std::stoll(PQcmdTuples(r->get()))});
  }
  auto d = c.Exec("DELETE FROM headshift_copy_rows WHERE migration_id = $1", {ref.migration_id});
  if (!d.ok()) return d.status();
  auto h = c.Exec("DELETE FROM headshift_copies WHERE migration_id = $1", {ref.migration_id});
  if (!h.ok()) return h.status();
  HS_RETURN_IF_ERROR(tx.Commit());
  return rep;
}

StatusOr<RollbackReport> Retirer::RollbackSplit(const MoveRef& ref, const RollbackOptions& opts) {
  RollbackReport rep;
  rep.ref = ref;
  rep.layout = "split";
  auto rc = OpenRecordedTarget(ctx_, ref);
  if (!rc.ok()) return rc.status();
  const TenantSchema& ts = *rc->target.schema;
  PgConn& tgt = *rc->target.conn;
  if (!rc->header) {
    rep.nothing_to_do = true;
    return rep;
  }
  if (rc->header->retiring || rc->header->retired) {
    return Status::NeedsOperator("the source rows of migration " + ref.migration_id +
                                     " were retired: the tenant now lives only on cluster " + ref.to,
                                 "move it back with a new migration (the archive schema headshift_archive on cluster " +
                                     ref.from + " keeps the old rows if retire archived them)");
  }
  RowSql sql(tgt, ts);
  const TenantSelector at_target = ctx_.Selector(ref.tenant, ref.to, *rc->header);
  auto rows = ReadCopyRows(tgt, ref.migration_id);
  if (!rows.ok()) return rows.status();

  PgTx tx(tgt);
  HS_RETURN_IF_ERROR(tx.Begin());
  // What the target changed since the last sync would be lost with the copy.
  std::vector<std::string> changes;
  for (const auto& t : ts.tables()) {
    auto lock = tgt.Exec("SELECT count(*) FROM (SELECT 1 FROM " + sql.Ident(t.name) + " t WHERE " +
                         sql.MemberPredicate(t, "t", at_target) + " FOR UPDATE) x");
    if (!lock.ok()) return lock.status().WithContext("locking " + t.name);
    auto now = TargetHashes(tgt, sql, t, ref.migration_id);
    if (!now.ok()) return now.status();
    for (const RowDrift& d : DiffRecordedRows((*rows)[t.name], nullptr, &*now)) {
      changes.push_back(t.name + " " + std::to_string(d.target_id) +
                        (d.target == Drift::kGone ? " (deleted on target)" : " (changed on target)"));
    }
    auto extras = TargetExtras(tgt, sql, t, at_target, ref.migration_id);
    if (!extras.ok()) return extras.status();
    for (int64_t id : *extras) changes.push_back(t.name + " " + std::to_string(id) + " (new on target)");
  }
  rep.discarded_target_changes = static_cast<int64_t>(changes.size());
  if (!changes.empty() && !opts.discard_target_changes) {
    return Status::NeedsOperator(std::to_string(changes.size()) + " change(s) were made on cluster " + ref.to +
                                     " after the copy (" + Sample(changes) + "); rolling back would lose them",
                                 "roll back with discard_target_changes (CLI: --discard-target-changes) to accept "
                                 "the loss, or finish the migration instead");
  }
  for (auto it = ts.tables().rbegin(); it != ts.tables().rend(); ++it) {
    auto r = tgt.Exec("DELETE FROM " + sql.Ident(it->name) + " t WHERE " + sql.MemberPredicate(*it, "t", at_target) +
                      " OR t." + sql.Ident(it->pk) + " IN (SELECT target_id FROM headshift_copy_rows WHERE migration_id = " +
                      sql.Literal(ref.migration_id) + " AND tbl = " + sql.Literal(it->name) + ")");
    if (!r.ok()) return r.status().WithContext("removing " + it->name + " from cluster " + ref.to + " (nothing was changed)");
    rep.rows.insert(rep.rows.begin(), {it->name, std::stoll(PQcmdTuples(r->get()))});
  }
  auto d = tgt.Exec("DELETE FROM headshift_copy_rows WHERE migration_id = $1", {ref.migration_id});
  if (!d.ok()) return d.status();
  auto h = tgt.Exec("DELETE FROM headshift_copies WHERE migration_id = $1", {ref.migration_id});
  if (!h.ok()) return h.status();
  HS_RETURN_IF_ERROR(tx.Commit());
  return rep;
}

}  // namespace headshift::migrate
