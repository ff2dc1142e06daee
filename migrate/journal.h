// Journal: the persistent record of migrations, one row per step in `headshift_journal` (in the shared
// database, or the target cluster's database with journal.location: target). A migration has a
// `migration` row carrying its overall state, plus one row per step it started (preflight, copy,
// verify, ...). Re-starting a step (resume) updates its row and counts attempts in details.attempts.
//
// States are free-form strings; headshift uses: running, done, failed, refused, rolled_back,
// needs_operator, skipped. Details are JSON objects; FinishStep/SetState merge them into the row's.
// Every string in the details passed to Create/StartStep/FinishStep/SetState is stored through Redact()
// (common/redact.h): error messages and command output never put a registered secret into the table.
//
// Thread-safety: not thread-safe (uses ClusterDatabases' cached connections).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "migrate/cluster_databases.h"

namespace headshift::migrate {

struct JournalStep {
  std::string step;
  std::string state;
  std::string started_at;   // ISO 8601 UTC
  std::string finished_at;  // "" while running
  nlohmann::json details = nlohmann::json::object();
};

struct MigrationRecord {
  std::string id;
  std::string tenant;
  std::string from;
  std::string to;
  std::string state;  // of the `migration` row
  std::string started_at;
  std::string finished_at;
  nlohmann::json details = nlohmann::json::object();
  std::vector<JournalStep> steps;  // in start order, without the `migration` row

  // The most recently started step, or nullptr.
  const JournalStep* LastStep() const;
  const JournalStep* Step(const std::string& name) const;
  nlohmann::json ToJson() const;
};

class Journal {
 public:
  static constexpr const char* kMigrationStep = "migration";

  explicit Journal(ClusterDatabases& dbs) : dbs_(dbs) {}

  // A new migration id: "m-<UTC yyyymmddThhmmss>-<8 hex>".
  static std::string NewMigrationId();

  // Records a new migration (state running). `id` empty = NewMigrationId(). Creates the journal table
  // on first use. Refused if the id exists.
  StatusOr<MigrationRecord> Create(const std::string& tenant, const std::string& from, const std::string& to,
                                   const std::string& id = "", const nlohmann::json& details = nlohmann::json::object());
  // Marks `step` running (inserting it, or restarting it with attempts + 1).
  Status StartStep(const MigrationRecord& m, const std::string& step,
                   const nlohmann::json& details = nlohmann::json::object());
  // Marks `step` finished with `state`, merging `details`. BadInput if the step was never started.
  Status FinishStep(const MigrationRecord& m, const std::string& step, const std::string& state,
                    const nlohmann::json& details = nlohmann::json::object());
  // Sets the migration's overall state (finished_at is set unless the state is running).
  Status SetState(const MigrationRecord& m, const std::string& state,
                  const nlohmann::json& details = nlohmann::json::object());

  // One migration by id (searched in every journal database). BadInput if unknown.
  StatusOr<MigrationRecord> Get(const std::string& id);
  // All migrations (optionally of one tenant), newest first.
  StatusOr<std::vector<MigrationRecord>> List(const std::optional<std::string>& tenant = std::nullopt);

 private:
  StatusOr<PgConn*> Home(const MigrationRecord& m);
  ClusterDatabases& dbs_;
};

}  // namespace headshift::migrate
