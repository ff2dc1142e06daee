#include "migrate/recorded_copy.h"

namespace headshift::migrate {
namespace {

// Reads the header recorded in `rc.target`'s database; a recorded one must match ref.
Status ReadHeader(const MoveRef& ref, RecordedCopy& rc) {
  auto header = ReadCopyHeader(*rc.target.conn, ref.migration_id);
  if (!header.ok()) return header.status();
  rc.header = std::move(*header);
  if (rc.header) HS_RETURN_IF_ERROR(CheckHeaderMatches(*rc.header, ref.tenant, ref.from, ref.to));
  return Status::Ok();
}

}  // namespace

StatusOr<RecordedCopy> OpenRecordedCopy(MoveContext& ctx, const MoveRef& ref) {
  RecordedCopy rc;
  ClusterDatabases& dbs = ctx.dbs();
  if (dbs.shared()) {
    auto schema = ctx.Schema(ref.from);
    if (!schema.ok()) return schema.status();
    auto conn = dbs.Conn(ref.from);
    if (!conn.ok()) return conn.status();
    rc.source = {*schema, *conn};
    rc.target = rc.source;
  } else {
    auto source_schema = ctx.Schema(ref.from);
    if (!source_schema.ok()) return source_schema.status();
    auto target_schema = ctx.Schema(ref.to);
    if (!target_schema.ok()) return target_schema.status();
    auto source_conn = dbs.Conn(ref.from);
    if (!source_conn.ok()) return source_conn.status();
    auto target_conn = dbs.Conn(ref.to);
    if (!target_conn.ok()) return target_conn.status();
    rc.source = {*source_schema, *source_conn};
    rc.target = {*target_schema, *target_conn};
  }
  HS_RETURN_IF_ERROR(ReadHeader(ref, rc));
  return rc;
}

StatusOr<RecordedCopy> OpenRequiredCopy(MoveContext& ctx, const MoveRef& ref) {
  auto rc = OpenRecordedCopy(ctx, ref);
  if (!rc.ok() || rc->header) return rc;
  return Status::BadInput(
      "no copy recorded for migration " + ref.migration_id + (ctx.dbs().shared() ? "" : " on cluster " + ref.to),
      "run the copy step first");
}

StatusOr<RecordedCopy> OpenRecordedTarget(MoveContext& ctx, const MoveRef& ref) {
  RecordedCopy rc;
  auto schema = ctx.Schema(ref.to);
  if (!schema.ok()) return schema.status();
  auto conn = ctx.dbs().Conn(ref.to);
  if (!conn.ok()) return conn.status();
  rc.target = {*schema, *conn};
  HS_RETURN_IF_ERROR(ReadHeader(ref, rc));
  return rc;
}

}  // namespace headshift::migrate
