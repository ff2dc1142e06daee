#include "migrate/headshift_tables.h"

namespace headshift::migrate {

Status EnsureHeadshiftTables(PgConn& conn) {
  auto exists = TableExists(conn, "headshift_copy_rows");
  if (exists.ok() && *exists) {
    auto j = TableExists(conn, "headshift_journal");
    auto c = TableExists(conn, "headshift_clusters");
    if (j.ok() && *j && c.ok() && *c) return Status::Ok();
  }
  Status st = conn.ExecScript(R"SQL(
BEGIN;
SELECT pg_advisory_xact_lock(7228116712049151001);
CREATE TABLE IF NOT EXISTS headshift_journal (
  seq bigserial PRIMARY KEY,
  id text NOT NULL,
  tenant text NOT NULL,
  from_cluster text NOT NULL,
  to_cluster text NOT NULL,
  step text NOT NULL,
  state text NOT NULL,
  started_at timestamptz NOT NULL DEFAULT now(),
  finished_at timestamptz,
  details jsonb NOT NULL DEFAULT '{}'::jsonb,
  UNIQUE (id, step)
);
CREATE INDEX IF NOT EXISTS headshift_journal_tenant ON headshift_journal (tenant);
CREATE TABLE IF NOT EXISTS headshift_clusters (
  id text PRIMARY KEY,
  cordoned boolean NOT NULL DEFAULT false,
  reason text NOT NULL DEFAULT '',
  updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS headshift_copies (
  migration_id text PRIMARY KEY,
  tenant text NOT NULL,
  from_cluster text NOT NULL,
  to_cluster text NOT NULL,
  layout text NOT NULL,
  copied_at timestamptz NOT NULL DEFAULT now(),
  report jsonb NOT NULL DEFAULT '{}'::jsonb,
  caught_up_at timestamptz,
  retiring_at timestamptz,
  retired_at timestamptz
);
CREATE TABLE IF NOT EXISTS headshift_copy_rows (
  migration_id text NOT NULL,
  tbl text NOT NULL,
  source_id bigint NOT NULL,
  target_id bigint NOT NULL,
  row_hash bigint NOT NULL,
  PRIMARY KEY (migration_id, tbl, source_id)
);
COMMIT;
)SQL");
  if (!st.ok()) {
    (void)conn.ExecScript("ROLLBACK");
    return st.WithContext("creating headshift's tables");
  }
  return Status::Ok();
}

StatusOr<bool> TableExists(PgConn& conn, const std::string& table) {
  auto r = conn.Exec("SELECT to_regclass(quote_ident(current_schema()) || '.' || quote_ident($1)) IS NOT NULL",
                     {table});
  if (!r.ok()) return r.status();
  return r->Get(0, 0) == "t";
}

}  // namespace headshift::migrate
