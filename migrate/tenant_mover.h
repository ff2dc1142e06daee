// TenantMover: the data half of a tenant migration, as the orchestrator (playbooks/) and the CLI use it.
// One object per process/run; it owns the cluster connections and caches each database's schema.
//
// Typical use (the orchestrator adds journal steps, the route flip and session resets in between):
//
//   auto mover = TenantMover::Open(config);                       // BadInput on a bad config/profile
//   auto lock  = mover->Lock(tenant, from, to, id);               // Refused (3) if already migrating
//   auto plan  = mover->Preflight(tenant, from, to);              // Refused (3) listing every conflict
//   MoveRef ref{id, tenant, from, to};
//   mover->Copy(ref);  mover->Verify(ref);                        // Verify undoes the copy on mismatch
//   ... route flip, sessions reset ...
//   mover->CatchUp(ref);  mover->Retire(ref, /*archive=*/true);   // or mover->Rollback(ref)
//
// Every step is idempotent: re-running it after a crash converges (see each class's contract).
// Status codes follow the CLI exit codes: 2 bad input, 3 refused (nothing changed), 1 failed (nothing
// changed, or undone), 4 needs operator.
//
// Thread-safety: not thread-safe; use one TenantMover per thread.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/config.h"
#include "migrate/cluster_cordons.h"
#include "migrate/cluster_databases.h"
#include "migrate/journal.h"
#include "migrate/move_context.h"
#include "migrate/move_plan.h"
#include "migrate/reports.h"
#include "migrate/tenant_facts.h"
#include "migrate/tenant_lock.h"

namespace headshift::migrate {

class TenantMover {
 public:
  // Resolves the DSNs and loads the schema profile (database.schema_profile, or the built-in headscale
  // one, with database.cluster_column applied). Connects lazily. BadInput on a missing secret, an invalid
  // profile, or no cluster column in the shared layout.
  static StatusOr<std::unique_ptr<TenantMover>> Open(const Config& config);
  // Same, with an explicit profile (tests, tools).
  static StatusOr<std::unique_ptr<TenantMover>> Open(const Config& config, const SchemaProfile& profile);

  ClusterDatabases& databases() { return *dbs_; }
  const SchemaProfile& profile() const { return ctx_->profile(); }
  Journal& journal() { return *journal_; }
  ClusterCordons& cordons() { return *cordons_; }

  // Who owns which ACL tags (the caller resolves the policy's tagOwners to tenants): a tenant's rows
  // then include its tagged devices, those with no user whose tags it owns alone (tag_ownership.h), in
  // plan, copy, verify, catch-up, retire, rollback and the tenant facts; preflight refuses devices whose
  // owner is unclear (tagged_devices.h). Set it before Plan/Preflight/Copy and before TenantNodes. The
  // copy records the tags it used; the later steps of that migration use the recorded ones. Default:
  // empty (tagged devices move only through the tenant's pre-auth keys).
  void SetTagOwnership(TagOwnership ownership) { ctx_->SetTagOwnership(std::move(ownership)); }
  const TagOwnership& tag_ownership() const { return ctx_->tag_ownership(); }

  // Which cluster holds the tenant: nullopt if none; Refused naming the clusters if several do
  // (e.g. a copy that was never retired). Read-only.
  StatusOr<std::optional<std::string>> LocateTenant(const std::string& tenant);

  // The advisory lock for one migration of `tenant` (TenantLock). Hold it for the migration's life.
  StatusOr<std::unique_ptr<TenantLock>> Lock(const std::string& tenant, const std::string& from, const std::string& to,
                                             const std::string& migration_id);

  // Rows per table, proposed id remaps and every conflict. Read-only; conflicts are not an error.
  StatusOr<MovePlan> Plan(const std::string& tenant, const std::string& from, const std::string& to);
  // The plan, or Refused listing every conflict at once (the plan is still stored in *refused when
  // given). Read-only.
  StatusOr<PreflightReport> Preflight(const std::string& tenant, const std::string& from, const std::string& to,
                                      PreflightReport* refused = nullptr);

  // See Copier (migrate/copier.h).
  StatusOr<CopyReport> Copy(const MoveRef& ref, const CopyOptions& opts = {});
  // Values of the tenant's copied rows that other rows of the target cluster use now (target_collisions.h):
  // tailnet IPs, given_name, node_key, ... registered on the target after the copy's own re-check, e.g.
  // before the target reloaded its nodes. Compares the tenant's rows on ref.to with the cluster's other
  // rows (the tenant's own excluded); empty when none. Read-only. BadInput when no copy of
  // ref.migration_id is recorded on the target (or it was for another tenant/route); Failed on database
  // errors.
  StatusOr<std::vector<Conflict>> TargetCollisions(const MoveRef& ref);
  // See Verifier (migrate/verifier.h). On mismatch the copy is undone and Failed returned; *detail (when
  // given) receives the report either way.
  StatusOr<VerifyReport> Verify(const MoveRef& ref, VerifyReport* detail = nullptr);
  // See CatchUp (migrate/catch_up.h).
  StatusOr<CatchUpReport> CatchUp(const MoveRef& ref, ConflictPolicy policy = ConflictPolicy::kReport);
  // See Retirer (migrate/retirer.h).
  StatusOr<RetireReport> Retire(const MoveRef& ref, bool archive);
  StatusOr<RollbackReport> Rollback(const MoveRef& ref, const RollbackOptions& opts = {});

  // Tenant facts (migrate/tenant_facts.h).
  StatusOr<std::vector<TenantNode>> TenantNodes(const std::string& tenant, const std::string& cluster);
  StatusOr<std::vector<std::string>> PublicClientAddresses(const std::string& tenant, const std::string& cluster);
  StatusOr<ClusterLoad> Load();

 private:
  TenantMover() = default;
  std::unique_ptr<ClusterDatabases> dbs_;
  std::unique_ptr<MoveContext> ctx_;
  std::unique_ptr<Journal> journal_;
  std::unique_ptr<ClusterCordons> cordons_;
};

}  // namespace headshift::migrate
