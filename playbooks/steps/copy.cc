// copy: the tenant's rows to the target (shared layout: one UPDATE of cluster_id; split: COPY
// streamed, ids remapped when taken). Journals the per-table rows and remaps (CopyReport).
// Undo: the rows back (the target's changes for moved devices discarded). In the shared layout the
// source control plane only accepts a device whose row carries its cluster_id, so rows go back
// before anything else; split: the source rows are still there, so the target copy is removed last
// (devices never meet a cluster without their rows).
#include "playbooks/migration_run.h"
#include "playbooks/steps/steps.h"

namespace headshift::steps {

namespace {

StatusOr<nlohmann::json> Run(MigrationRun& run) {
  migrate::TenantMover& mover = *run.env.mover;
  auto r = mover.Copy(run.ref);
  if (!r.ok()) return r.status();
  for (const auto& t : r->tables) run.rep.rows[t.table] = t.rows;
  const std::string& devices = mover.profile().device_table;
  if (auto it = r->remaps.find(devices); it != r->remaps.end() && !it->second.empty()) {
    run.rep.warnings.push_back(std::to_string(it->second.size()) + " device(s) of " + run.ref.tenant +
                               " got a new node id on cluster " + run.ref.to + " (" + devices +
                               ".id was taken there): clients see a new StableNodeID");
  }
  return r->ToJson();
}

Status Undo(MigrationRun& run, nlohmann::json& details) {
  migrate::RollbackOptions ro;
  ro.discard_target_changes = true;  // state the target wrote for devices that had moved
  auto r = run.env.mover->Rollback(run.ref, ro);
  if (!r.ok()) return r.status();
  details["rows"] = r->ToJson();
  return Status::Ok();
}

}  // namespace

MigrationStep Copy() {
  return MigrationStep{
      .name = "copy",
      .run = Run,
      .undo = Undo,
      .undo_first = [](const MigrationRun& run) { return run.env.config.database.layout != DbLayout::kSplit; },
  };
}

}  // namespace headshift::steps
