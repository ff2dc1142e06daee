// The inputs and results of the data steps (copy, verify, catch-up, retire, rollback). Plain values with
// ToJson() for the journal and `--json` output.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/status.h"
#include "migrate/row_sql.h"

namespace headshift::migrate {

// Names one migration's data movement. The same values must be passed to every step of a migration
// (the copy records them and later steps check them).
struct MoveRef {
  std::string migration_id;
  std::string tenant;
  std::string from;
  std::string to;
};

// ---- copy ----
struct CopyProgress {
  std::string table;
  int64_t rows = 0;       // rows streamed so far for this table
  bool table_done = false;
  int source_backend_pid = 0;  // PostgreSQL backend serving the source side (0 in shared)
  int target_backend_pid = 0;  // backend holding the copy's transaction
};

struct CopyOptions {
  // Called after every table and, within a table, every `progress_every_rows` rows. A non-OK result
  // aborts the copy (nothing is committed). Progress bars use it; tests use it to pause mid-copy.
  std::function<Status(const CopyProgress&)> on_progress;
  int64_t progress_every_rows = 0;
  // Force PostgreSQL's per-row foreign-key triggers even when the bulk check is possible (see Copier).
  bool per_row_fk_checks = false;
};

struct TableCopy {
  std::string table;
  int64_t rows = 0;
  int64_t bytes = 0;
  int64_t id_remaps = 0;
  double ms = 0;
};

struct CopyReport {
  MoveRef ref;
  std::string layout;
  std::vector<TableCopy> tables;  // foreign-key order
  IdMaps remaps;                  // old -> new for every id that changed
  bool resumed = false;           // an earlier run had already committed this copy
  std::string fk_checks;          // "triggers" (per row) or "bulk" (one set-based check per foreign key)
  double elapsed_ms = 0;
  std::vector<std::pair<std::string, double>> phases_ms;  // where the time went
  // The tags the tenant owned alone when copied (its tagged devices were selected by them); recorded,
  // so that the later steps select the same rows (MoveContext::Selector with the header).
  std::vector<std::string> owned_tags;

  int64_t TotalRows() const;
  nlohmann::json ToJson() const;  // remaps summarised (count + first pairs)
};

// ---- verify ----
struct RowIssue {
  std::string table;
  int64_t source_id = 0;
  int64_t target_id = 0;
  std::string what;  // "changed on target", "missing on target", "extra on target", "changed on source", ...
};

struct TableVerify {
  std::string table;
  int64_t source_rows = 0;
  int64_t target_rows = 0;
  int64_t copied_rows = 0;
  std::string source_checksum;  // sum of row hashes (ids mapped, cluster normalised), as text
  std::string target_checksum;
  std::string copy_checksum;    // recorded at the last sync
  int64_t late_writes = 0;      // source changes since the copy (catch-up applies them)
  int64_t target_writes = 0;    // target changes after the cut
  int64_t mismatches = 0;
};

struct VerifyReport {
  MoveRef ref;
  std::string layout;
  std::vector<TableVerify> tables;
  std::vector<RowIssue> mismatches;   // the copy is wrong: verify fails and undoes the copy
  std::vector<RowIssue> late_writes;  // the source moved on: fine, catch-up handles them
  // After a catch-up (the cut happened, the target serves the tenant): target rows changed, deleted or
  // added since the last sync. Reported, never a mismatch, and the copy is never undone.
  std::vector<RowIssue> target_writes;
  bool after_cut = false;
  bool ok = false;
  bool undone = false;  // the copy was undone because of mismatches
  double elapsed_ms = 0;

  nlohmann::json ToJson() const;
};

// ---- catch-up ----
enum class ConflictPolicy { kReport, kSourceWins, kTargetWins };

struct CatchUpConflict {
  std::string table;
  int64_t source_id = 0;
  int64_t target_id = 0;
  std::string what;  // "changed on both sides", "deleted on source, changed on target", ...
  // The row as on the source (ids mapped) / as on the target, null if deleted. Credential columns
  // (SchemaProfile::secret_columns) are masked: "<secret, differs>", "<secret, same>" or "<secret>".
  nlohmann::json source_version;
  nlohmann::json target_version;
  std::vector<std::string> differing_columns;  // when both versions exist, sorted
};

struct TableCatchUp {
  std::string table;
  int64_t updated = 0;      // source changes applied to the target
  int64_t inserted = 0;     // rows new on the source
  int64_t deleted = 0;      // rows deleted on the source, deleted on the target
  int64_t target_only = 0;  // rows changed on the target only (kept)
  int64_t conflicts = 0;
};

struct CatchUpReport {
  MoveRef ref;
  std::string layout;
  std::vector<TableCatchUp> tables;
  std::vector<CatchUpConflict> conflicts;  // never applied with ConflictPolicy::kReport
  IdMaps new_remaps;                       // ids allocated for inserted rows that changed
  double elapsed_ms = 0;

  int64_t Applied() const;
  nlohmann::json ToJson() const;
};

// ---- retire / rollback ----
struct TableCount {
  std::string table;
  int64_t rows = 0;
};

struct RetireReport {
  MoveRef ref;
  std::vector<TableCount> deleted;   // source rows removed (children first)
  std::string archive_schema;        // "" when not archived
  int64_t pending_late_writes = 0;   // source changes not caught up (kept in the archive)
  bool already_retired = false;
  nlohmann::json ToJson() const;
};

struct RollbackOptions {
  // Split layout: rows written on the target after the copy (devices that already reconnected) are
  // lost by a rollback. Without this flag such changes make Rollback return NeedsOperator.
  bool discard_target_changes = false;
};

struct RollbackReport {
  MoveRef ref;
  std::string layout;
  std::vector<TableCount> rows;     // split: target rows deleted; shared: rows moved back
  int64_t discarded_target_changes = 0;
  bool nothing_to_do = false;       // no copy recorded (never copied, or already rolled back)
  nlohmann::json ToJson() const;
};

}  // namespace headshift::migrate
