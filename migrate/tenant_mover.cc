#include "migrate/tenant_mover.h"

#include <set>

#include "migrate/catch_up.h"
#include "migrate/copier.h"
#include "migrate/planner.h"
#include "migrate/retirer.h"
#include "migrate/target_collisions.h"
#include "migrate/copy_state.h"
#include "migrate/verifier.h"

namespace headshift::migrate {

StatusOr<std::unique_ptr<TenantMover>> TenantMover::Open(const Config& config) {
  auto profile = LoadConfiguredProfile(config.database);
  if (!profile.ok()) return profile.status();
  return Open(config, *profile);
}

StatusOr<std::unique_ptr<TenantMover>> TenantMover::Open(const Config& config, const SchemaProfile& profile) {
  HS_RETURN_IF_ERROR(CheckProfileLayout(profile, config.database.layout));
  auto dbs = ClusterDatabases::Open(config);
  if (!dbs.ok()) return dbs.status();
  std::unique_ptr<TenantMover> m(new TenantMover());
  m->dbs_ = std::move(*dbs);
  m->ctx_ = std::make_unique<MoveContext>(*m->dbs_, profile);
  m->journal_ = std::make_unique<Journal>(*m->dbs_);
  m->cordons_ = std::make_unique<ClusterCordons>(*m->dbs_);
  return m;
}

StatusOr<std::optional<std::string>> TenantMover::LocateTenant(const std::string& tenant) {
  std::vector<std::string> found;
  std::set<std::string> seen_db;
  for (const auto& cluster : dbs_->cluster_ids()) {
    auto schema = ctx_->Schema(cluster);
    if (!schema.ok()) return schema.status();
    auto conn = dbs_->Conn(cluster);
    if (!conn.ok()) return conn.status();
    RowSql sql(**conn, **schema);
    const TenantTable& root = (*schema)->root();
    if (dbs_->shared()) {
      if (!seen_db.insert("shared").second) continue;
      auto r = (*conn)->Exec("SELECT DISTINCT " + sql.Ident((*schema)->cluster_column()) + "::text FROM " +
                             sql.Ident(root.name) + " WHERE " + sql.Ident(profile().root_key) + " = $1 ORDER BY 1",
                             {tenant});
      if (!r.ok()) return r.status().WithContext("locating tenant " + tenant);
      for (int i = 0; i < r->rows(); ++i) found.push_back(r->Get(i, 0));
    } else {
      auto r = (*conn)->Exec("SELECT count(*) FROM " + sql.Ident(root.name) + " WHERE " + sql.Ident(profile().root_key) +
                             " = $1", {tenant});
      if (!r.ok()) return r.status().WithContext("locating tenant " + tenant + " on cluster " + cluster);
      if (r->Get(0, 0) != "0") found.push_back(cluster);
    }
  }
  if (found.empty()) return std::optional<std::string>();
  if (found.size() > 1) {
    std::string list;
    for (const auto& c : found) list += (list.empty() ? "" : ", ") + c;
    return Status::Refused("tenant " + tenant + " exists on several clusters (" + list + ")",
                           "an earlier migration may have copied it without retiring the source: finish or roll "
                           "back that migration (`headshift status " + tenant + "`), then retry");
  }
  return std::optional<std::string>(found.front());
}

StatusOr<std::unique_ptr<TenantLock>> TenantMover::Lock(const std::string& tenant, const std::string& from,
                                                        const std::string& to, const std::string& migration_id) {
  return TenantLock::Acquire(*dbs_, tenant, from, to, migration_id);
}

StatusOr<MovePlan> TenantMover::Plan(const std::string& tenant, const std::string& from, const std::string& to) {
  Planner planner(*ctx_);
  return planner.Plan(tenant, from, to);
}

StatusOr<PreflightReport> TenantMover::Preflight(const std::string& tenant, const std::string& from,
                                                 const std::string& to, PreflightReport* refused) {
  auto plan = Plan(tenant, from, to);
  if (!plan.ok()) return plan.status();
  if (!plan->ok()) {
    if (refused) *refused = *plan;
    return plan->ToStatus();
  }
  return plan;
}

StatusOr<CopyReport> TenantMover::Copy(const MoveRef& ref, const CopyOptions& opts) {
  Copier copier(*ctx_);
  return copier.Copy(ref, opts);
}

StatusOr<std::vector<Conflict>> TenantMover::TargetCollisions(const MoveRef& ref) {
  HS_RETURN_IF_ERROR(dbs_->CheckKnown(ref.from, "source"));
  HS_RETURN_IF_ERROR(dbs_->CheckKnown(ref.to, "target"));
  auto schema = ctx_->Schema(ref.to);
  if (!schema.ok()) return schema.status();
  auto conn = dbs_->Conn(ref.to);
  if (!conn.ok()) return conn.status();
  auto header = ReadCopyHeader(**conn, ref.migration_id);
  if (!header.ok()) return header.status();
  if (!*header) {
    return Status::BadInput("no copy recorded for migration " + ref.migration_id + " on cluster " + ref.to,
                            "check the copied rows only after the copy step succeeded (see `headshift status`)");
  }
  HS_RETURN_IF_ERROR(CheckHeaderMatches(**header, ref.tenant, ref.from, ref.to));
  // Both sides on the target: the tenant's rows there against the cluster's other rows.
  const TenantSelector on_target = ctx_->Selector(ref.tenant, ref.to, **header);
  CollisionSides sides;
  sides.values_conn = *conn;
  sides.values_schema = *schema;
  sides.values_selector = on_target;
  sides.target_conn = *conn;
  sides.target_schema = *schema;
  sides.target_cluster = ref.to;
  sides.own_on_target = on_target;
  sides.own_id_label = "copied id";
  migrate::TargetCollisions check(*ctx_, std::move(sides));
  return check.CheckAll();
}

StatusOr<VerifyReport> TenantMover::Verify(const MoveRef& ref, VerifyReport* detail) {
  Verifier verifier(*ctx_);
  return verifier.Verify(ref, {}, detail);
}

StatusOr<CatchUpReport> TenantMover::CatchUp(const MoveRef& ref, ConflictPolicy policy) {
  migrate::CatchUp c(*ctx_);
  return c.Run(ref, policy);
}

StatusOr<RetireReport> TenantMover::Retire(const MoveRef& ref, bool archive) {
  Retirer r(*ctx_);
  return r.Retire(ref, archive);
}

StatusOr<RollbackReport> TenantMover::Rollback(const MoveRef& ref, const RollbackOptions& opts) {
  Retirer r(*ctx_);
  return r.Rollback(ref, opts);
}

StatusOr<std::vector<TenantNode>> TenantMover::TenantNodes(const std::string& tenant, const std::string& cluster) {
  TenantFacts f(*ctx_);
  return f.Nodes(tenant, cluster);
}

StatusOr<std::vector<std::string>> TenantMover::PublicClientAddresses(const std::string& tenant,
                                                                      const std::string& cluster) {
  TenantFacts f(*ctx_);
  return f.PublicClientAddresses(tenant, cluster);
}

StatusOr<ClusterLoad> TenantMover::Load() {
  TenantFacts f(*ctx_);
  return f.Load();
}

}  // namespace headshift::migrate
