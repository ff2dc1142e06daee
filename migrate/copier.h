// Copier: the copy step. Idempotent: the copy and its record (copy_state.h) commit in one target
// transaction, so re-running after a crash either finds the record (and returns it, resumed=true) or
// finds nothing on the target and copies again.
//
// Shared layout: one transaction locks the tenant's rows, records their hashes (cluster normalised to
// the target), rewrites the cluster column, and checks the rows hash the same afterwards.
//
// Split layout: the source is read in one REPEATABLE READ snapshot; the target transaction takes a
// per-database advisory lock (copies into one cluster are serialised), advances each key sequence past
// the largest id involved, keeps source ids that are free on the target and gives taken ones fresh
// sequence values; then each table is streamed with binary COPY from source to target in foreign-key
// order, every primary/foreign key mapped and the cluster column rewritten inside the source SELECT.
// Meanwhile a second source connection, on the same exported snapshot, computes the record (source id,
// target id, hash of the mapped row), which is COPYed into headshift_copy_rows in the same target
// transaction; its row count must equal the copied rows. Content is proven by Verify, which compares both
// sides against this record (the orchestrator runs it right after; it undoes a bad copy).
// Foreign keys: when the role may SET session_replication_role and the tenant tables have no user
// triggers and only one-column foreign keys, PostgreSQL's per-row FK triggers are skipped during the load
// (as logical replication does) and each foreign key is checked once, set-based, before commit; rows of
// tables that do not move are locked FOR KEY SHARE. Otherwise the triggers check each row. Either way a
// violation commits nothing. Sequences stay advanced even if the copy is rolled back (harmless gaps).
//
// Values taken on the target since preflight: both layouts re-run the preflight collision check
// (target_collisions.h: target unique indexes, unique_in_cluster values such as tailnet IPs and
// given_name) inside the copy's transactions, after its locks and before its first write, and refuse
// (nothing committed, no record) naming the table, column and values. Shared: after the tenant's rows are
// locked FOR UPDATE. Split: on the source snapshot being copied, beside the id listing, as two statements
// run at once (the tenant's key hashes on the snapshot, the target cluster's on the target, compared
// here); the exact check runs only when some hashes meet (TargetCollisions::BuildHashQueries). A device
// registering on the target while the copy transaction runs can still slip through (headscale does not
// take our locks): TenantMover::TargetCollisions re-checks after the copy.
//
// Thread-safety: not thread-safe.
#pragma once

#include "migrate/move_context.h"
#include "migrate/reports.h"

namespace headshift::migrate {

class Copier {
 public:
  explicit Copier(MoveContext& ctx) : ctx_(ctx) {}

  // Refused: tenant missing on the source, already on the target (not by this migration), schema drift,
  // values of the tenant already used on the target cluster.
  // BadInput: unknown clusters, a record of this id for another tenant. Failed: database errors, a
  // dropped connection, a copy that does not match its source (nothing committed in all these cases).
  StatusOr<CopyReport> Copy(const MoveRef& ref, const CopyOptions& opts = {});

 private:
  StatusOr<CopyReport> CopyShared(const MoveRef& ref, const CopyOptions& opts);
  StatusOr<CopyReport> CopySplit(const MoveRef& ref, const CopyOptions& opts);
  MoveContext& ctx_;
};

// The report of a committed copy, rebuilt from its record in `conn` (resumed=true).
StatusOr<CopyReport> ReadCopyReport(PgConn& conn, const MoveRef& ref, const std::string& layout);

// Column differences of the tenant tables between two catalogs ("" when identical).
std::string SchemaDrift(const SchemaProfile& profile, const Catalog& source, const Catalog& target);

}  // namespace headshift::migrate
