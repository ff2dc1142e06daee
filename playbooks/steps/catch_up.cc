// catch_up: source writes made after the copy applied to the target; rows changed on both sides
// are reported (target kept, both versions in `conflicts` and the journal). After the cut: a
// failure stops for the operator.
#include "migrate/row_sql.h"
#include "playbooks/migration_run.h"
#include "playbooks/steps/steps.h"

namespace headshift::steps {

namespace {

StatusOr<nlohmann::json> Run(MigrationRun& run) {
  auto r = run.env.mover->CatchUp(run.ref, migrate::ConflictPolicy::kReport);
  if (!r.ok()) return r.status();
  for (const auto& c : r->conflicts) {
    // The versions come masked from CatchUp (credential columns never leave it in clear).
    std::string cols =
        c.differing_columns.empty() ? "" : " (columns differ: " + migrate::JoinStrings(c.differing_columns, ", ") + ")";
    run.rep.conflicts.push_back({{"table", c.table}, {"source_id", c.source_id}, {"target_id", c.target_id},
                                 {"message", c.table + " row " + std::to_string(c.source_id) + ": " + c.what + cols},
                                 {"differing_columns", c.differing_columns},
                                 {"source_version", c.source_version}, {"target_version", c.target_version}});
  }
  if (!r->conflicts.empty()) {
    run.rep.warnings.push_back(std::to_string(r->conflicts.size()) +
                               " row(s) changed on both sides after the copy: the target's version was kept, both "
                               "versions are in `conflicts` and the journal");
  }
  return r->ToJson();
}

}  // namespace

MigrationStep CatchUp() {
  return MigrationStep{
      .name = "catch_up",
      .after_cut = true,
      .run = Run,
  };
}

}  // namespace headshift::steps
