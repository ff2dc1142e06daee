#include "migrate/planner.h"

#include <map>

#include "migrate/cluster_cordons.h"
#include "migrate/headshift_tables.h"
#include "migrate/id_allocator.h"
#include "migrate/tagged_devices.h"
#include "migrate/target_collisions.h"

namespace headshift::migrate {
namespace {

// Schema differences of the tenant tables between source and target (split layout).
void CompareSchemas(const SchemaProfile& profile, const Catalog& src, const Catalog& tgt, MovePlan& plan) {
  std::vector<std::string> names = {profile.root_table};
  for (const auto& t : profile.tables) names.push_back(t.table);  // optional ones absent on both: skipped below
  const std::string fix = "upgrade both headscale nodes to the same version (same schema) before moving tenants";
  for (const auto& name : names) {
    const TableInfo* s = src.Find(name);
    const TableInfo* t = tgt.Find(name);
    if (!s) continue;  // the source schema problem is reported by schema resolution
    if (!t) {
      plan.conflicts.push_back({"schema_drift", name, "", "table " + name + " exists on the source but not on the target",
                                fix, {}});
      continue;
    }
    for (const auto& c : s->columns) {
      const ColumnInfo* tc = t->Find(c.name);
      if (!tc) {
        plan.conflicts.push_back({"schema_drift", name, c.name,
                                  name + "." + c.name + " (" + c.type + ") is missing on the target", fix, {}});
      } else if (tc->type != c.type) {
        plan.conflicts.push_back({"schema_drift", name, c.name,
                                  name + "." + c.name + " is " + c.type + " on the source but " + tc->type +
                                      " on the target",
                                  fix, {}});
      } else if (tc->generated != c.generated) {
        plan.conflicts.push_back({"schema_drift", name, c.name,
                                  name + "." + c.name + " is generated on one side only", fix, {}});
      }
    }
    for (const auto& c : t->columns) {
      if (!s->Find(c.name)) {
        plan.conflicts.push_back({"schema_drift", name, c.name,
                                  name + "." + c.name + " (" + c.type + ") exists on the target but not on the source",
                                  fix, {}});
      }
    }
  }
}

// The risk of devices getting a new node id: headscale's nodes.id is what tailscale clients know as
// their StableNodeID (Self.ID) and what the headscale CLI/API address a node by.
std::string NodeIdRisk(const std::string& tenant, const std::string& to, const std::string& device_table,
                       int64_t remapped, int64_t devices, const IdMap& sample) {
  std::vector<std::string> pairs;
  for (const auto& [o, n] : sample) pairs.push_back(std::to_string(o) + "->" + std::to_string(n));
  return std::to_string(remapped) + " of " + std::to_string(devices) + " device(s) of " + tenant +
         " get a new node id on cluster " + to + " (their " + device_table + ".id is taken there; proposed " +
         JoinStrings(pairs, ", ") + (remapped > static_cast<int64_t>(sample.size()) ? ", ..." : "") +
         "): headscale's node id is the client's StableNodeID (tailscale Self.ID), so those devices and their "
         "peers see a new node id, and scripts or API calls using the old ids must be updated";
}

}  // namespace

StatusOr<MovePlan> Planner::Plan(const std::string& tenant, const std::string& from, const std::string& to) {
  ClusterDatabases& dbs = ctx_.dbs();
  MovePlan plan;
  plan.tenant = tenant;
  plan.from = from;
  plan.to = to;
  plan.layout = dbs.shared() ? "shared" : "split";
  plan.profile = ctx_.profile().name;
  plan.cluster_column = ctx_.profile().cluster_column;
  if (tenant.empty()) return Status::BadInput("the tenant name is empty", "name the headscale user to move");

  bool from_known = dbs.Knows(from), to_known = dbs.Knows(to);
  if (!from_known) {
    plan.conflicts.push_back({"unknown_cluster", "", "", "source cluster '" + from + "' is not configured",
                              "use one of the cluster ids in headshift.yaml", {from}});
  }
  if (!to_known) {
    plan.conflicts.push_back({"unknown_cluster", "", "", "target cluster '" + to + "' is not configured",
                              "use one of the cluster ids in headshift.yaml", {to}});
  }
  if (from == to) {
    plan.conflicts.push_back({"same_cluster", "", "", "source and target are the same cluster (" + from + ")",
                              "pick another target cluster", {from}});
  }
  if (!from_known || !to_known || from == to) return plan;

  // Schemas.
  auto src_schema = ctx_.Schema(from);
  if (!src_schema.ok()) return src_schema.status();
  const TenantSchema& ss = **src_schema;
  plan.cluster_type = ss.cluster_type();
  HS_RETURN_IF_ERROR(ctx_.CheckClusterValue(ss, from));
  HS_RETURN_IF_ERROR(ctx_.CheckClusterValue(ss, to));
  auto src_conn = dbs.Conn(from);
  if (!src_conn.ok()) return src_conn.status();
  PgConn& sc = **src_conn;
  RowSql ssql(sc, ss);
  const TenantSchema* ts = &ss;
  PgConn* tcp = &sc;
  if (!dbs.shared()) {
    auto src_cat = ctx_.CatalogOf(from);
    auto tgt_cat = ctx_.CatalogOf(to);
    if (!src_cat.ok()) return src_cat.status();
    if (!tgt_cat.ok()) return tgt_cat.status();
    CompareSchemas(ctx_.profile(), **src_cat, **tgt_cat, plan);
    auto tgt_schema = ctx_.Schema(to);
    if (!tgt_schema.ok()) {
      plan.conflicts.push_back({"schema_profile", "", "", tgt_schema.status().message(), tgt_schema.status().hint(), {}});
      ts = nullptr;
    } else {
      ts = *tgt_schema;
      if (ts->cluster_type() != ss.cluster_type()) {
        plan.conflicts.push_back({"schema_drift", "", plan.cluster_column,
                                  "the cluster column is " + ss.cluster_type() + " on the source but " +
                                      ts->cluster_type() + " on the target",
                                  "give both databases the same cluster_id type", {}});
      }
    }
    auto tgt_conn = dbs.Conn(to);
    if (!tgt_conn.ok()) return tgt_conn.status();
    tcp = *tgt_conn;
  }
  for (const auto& u : ss.unclassified()) {
    plan.conflicts.push_back({"unclassified_table", u, "",
                              "table " + u + " has a foreign key into a tenant table but is not in the schema profile",
                              "add it to the profile's tables (it moves with the tenant) or static (it never moves)",
                              {u}});
  }

  // Target cordon.
  {
    ClusterCordons cordons(dbs);
    auto cordoned = cordons.Get(to);
    if (cordoned.ok() && cordoned->cordoned) {
      plan.conflicts.push_back({"target_cordoned", "", "",
                                "target cluster " + to + " is cordoned (" + cordoned->reason + ")",
                                "uncordon it, or pick another target", {to}});
    }
  }

  // Membership and counts on the source.
  const TenantSelector src_sel = ctx_.Selector(tenant, from);
  std::map<std::string, std::vector<int64_t>> src_ids;
  for (const auto& t : ss.tables()) {
    auto r = sc.Exec("SELECT " + ssql.Ident(t.pk) + " FROM " + ssql.Ident(t.name) + " t WHERE " +
                     ssql.MemberPredicate(t, "t", src_sel) + " ORDER BY 1");
    if (!r.ok()) return r.status().WithContext("counting " + t.name + " of tenant " + tenant);
    auto& ids = src_ids[t.name];
    for (int i = 0; i < r->rows(); ++i) ids.push_back(r->GetInt(i, 0));
    plan.tables.push_back({t.name, static_cast<int64_t>(ids.size()), 0, {}});
  }
  if (src_ids[ss.root().name].empty()) {
    // Where is it, then?
    std::vector<std::string> elsewhere;
    for (const auto& c : dbs.cluster_ids()) {
      if (c == from) continue;
      auto sch = ctx_.Schema(c);
      auto conn = dbs.Conn(c);
      if (!sch.ok() || !conn.ok()) continue;
      RowSql q(**conn, **sch);
      auto r = (*conn)->Exec("SELECT count(*) FROM " + q.Ident((*sch)->root().name) + " t WHERE " +
                             q.MemberPredicate((*sch)->root(), "t", ctx_.Selector(tenant, c)));
      if (r.ok() && r->Get(0, 0) != "0") elsewhere.push_back(c);
    }
    plan.conflicts.push_back({"tenant_missing", ss.root().name, ctx_.profile().root_key,
                              "tenant " + tenant + " does not exist on cluster " + from +
                                  (elsewhere.empty() ? "" : " (it is on cluster " + JoinStrings(elsewhere, ", ") + ")"),
                              elsewhere.empty() ? "check the tenant name (a headscale user name)"
                                                : "use --from " + elsewhere.front() + ", or omit it",
                              {tenant}});
    return plan;
  }
  // Tagged devices (no user; their tags own them): whose they are must be clear.
  {
    TaggedCheckSides tagged{&sc, &ss, from, ts ? tcp : nullptr, ts, to};
    HS_RETURN_IF_ERROR(CheckTaggedDevices(ctx_, tenant, tagged, &plan.conflicts));
  }
  if (!ts) return plan;  // the target cannot be checked further
  PgConn& tc = *tcp;
  RowSql tsql(tc, *ts);

  // Tenant already on the target?
  bool on_target = false;
  {
    auto r = tc.Exec("SELECT " + tsql.Ident(ts->root().pk) + " FROM " + tsql.Ident(ts->root().name) + " t WHERE " +
                     tsql.MemberPredicate(ts->root(), "t", ctx_.Selector(tenant, to)) + " ORDER BY 1");
    if (!r.ok()) return r.status().WithContext("looking for tenant " + tenant + " on cluster " + to);
    if (r->rows() > 0) {
      on_target = true;
      std::vector<std::string> ids;
      for (int i = 0; i < r->rows(); ++i) ids.push_back(r->Get(i, 0));
      // A finished copy of an earlier migration that was never retired looks the same.
      std::string hint = "the tenant (or a user with its name) is already on cluster " + to +
                         "; if an earlier migration copied it, finish or roll back that migration";
      plan.conflicts.push_back({"tenant_on_target", ts->root().name, ctx_.profile().root_key,
                                "tenant " + tenant + " already exists on cluster " + to + " (" +
                                    ts->root().name + " id " + SampleValues(ids) + ")",
                                hint, CapValues(ids)});
    }
  }

  // Per-table checks.
  CollisionSides sides;
  sides.values_conn = &sc;
  sides.values_schema = &ss;
  sides.values_selector = src_sel;
  sides.target_conn = &tc;
  sides.target_schema = ts;
  sides.target_cluster = to;
  if (dbs.shared()) sides.own_on_target = src_sel;  // one table holds both sides
  sides.skip_root_unique_indexes = on_target;       // already reported as tenant_on_target
  TargetCollisions collisions(ctx_, std::move(sides));
  for (const auto& t : ss.tables()) {
    const TenantTable* tt = ts->Find(t.name);
    if (!tt) continue;  // drift already reported
    const std::string member = ssql.MemberPredicate(t, "t", src_sel);
    const std::vector<int64_t>& ids = src_ids[t.name];
    if (ids.empty()) continue;

    // References to rows outside the tenant (the copy would leave them dangling).
    for (const auto& ref : t.tenant_refs) {
      const TenantTable* rt = ss.Find(ref.ref_table);
      auto r = sc.Exec("SELECT t." + ssql.Ident(t.pk) + ", t." + ssql.Ident(ref.column) + " FROM " + ssql.Ident(t.name) +
                       " t WHERE " + member + " AND t." + ssql.Ident(ref.column) + " IS NOT NULL AND t." +
                       ssql.Ident(ref.column) + " NOT IN (" + ssql.MemberIds(*rt, src_sel) + ") ORDER BY 1");
      if (!r.ok()) return r.status().WithContext("checking references of " + t.name);
      if (r->rows() > 0) {
        std::vector<std::string> v;
        for (int i = 0; i < r->rows(); ++i) v.push_back(t.name + " " + r->Get(i, 0) + " -> " + ref.ref_table + " " + r->Get(i, 1));
        plan.conflicts.push_back({"dangling_reference", t.name, ref.column,
                                  std::to_string(v.size()) + " row(s) of " + t.name + " reference " + ref.ref_table +
                                      " rows of another tenant through " + ref.column + ": " + SampleValues(v),
                                  "clear or fix " + t.name + "." + ref.column + " on those rows (they belong to two "
                                  "tenants), then retry",
                                  CapValues(v)});
      }
    }

    // Shared layout: every tenant row must carry the source cluster.
    if (dbs.shared() && t.has_cluster_column && !t.root) {
      auto r = sc.Exec("SELECT t." + ssql.Ident(t.pk) + ", t." + ssql.Ident(ss.cluster_column()) + "::text FROM " +
                       ssql.Ident(t.name) + " t WHERE " + member + " AND t." + ssql.Ident(ss.cluster_column()) +
                       " IS DISTINCT FROM " + ssql.ClusterValue(from) + " ORDER BY 1");
      if (!r.ok()) return r.status().WithContext("checking the cluster of " + t.name);
      if (r->rows() > 0) {
        std::vector<std::string> v;
        for (int i = 0; i < r->rows(); ++i) v.push_back(t.name + " " + r->Get(i, 0) + " (cluster " + r->Get(i, 1) + ")");
        plan.conflicts.push_back({"cluster_mismatch", t.name, ss.cluster_column(),
                                  std::to_string(v.size()) + " row(s) of the tenant are not on cluster " + from + ": " +
                                      SampleValues(v),
                                  "these rows are inconsistent; fix their " + ss.cluster_column() + " first", CapValues(v)});
      }
    }

    // References to tables that do not move: the referenced rows must exist on the target.
    if (!dbs.shared()) {
      for (const auto& ref : t.external_refs) {
        auto r = sc.Exec("SELECT DISTINCT t." + ssql.Ident(ref.column) + "::text FROM " + ssql.Ident(t.name) + " t WHERE " +
                         member + " AND t." + ssql.Ident(ref.column) + " IS NOT NULL");
        if (!r.ok()) return r.status().WithContext("reading references of " + t.name);
        nlohmann::json vals = nlohmann::json::array();
        for (int i = 0; i < r->rows(); ++i) vals.push_back(r->Get(i, 0));
        if (vals.empty()) continue;
        auto m = tc.Exec("SELECT v FROM jsonb_array_elements_text($1::jsonb) v WHERE NOT EXISTS (SELECT 1 FROM " +
                             tsql.Ident(ref.ref_table) + " x WHERE x." + tsql.Ident(ref.ref_column) + "::text = v) ORDER BY 1",
                         {vals.dump()});
        if (!m.ok()) return m.status().WithContext("checking references of " + t.name + " on the target");
        if (m->rows() > 0) {
          std::vector<std::string> v;
          for (int i = 0; i < m->rows(); ++i) v.push_back(m->Get(i, 0));
          plan.conflicts.push_back({"missing_reference", t.name, ref.column,
                                    t.name + "." + ref.column + " references " + ref.ref_table + " rows missing on the target: " +
                                        SampleValues(v),
                                    "create those " + ref.ref_table + " rows on the target first", CapValues(v)});
        }
      }
    }

    // Unique indexes and unique_in_cluster values the target cluster already uses.
    HS_RETURN_IF_ERROR(collisions.CheckTable(t, &plan.conflicts));

    // Ids the copy would have to remap (split: the source id is taken on the target).
    if (!dbs.shared()) {
      auto taken = TakenTargetIds(tc, tsql, *tt, ids);
      if (!taken.ok()) return taken.status().WithContext("checking ids of " + t.name + " on the target");
      for (auto& tp : plan.tables) {
        if (tp.table != t.name) continue;
        tp.id_remaps = static_cast<int64_t>(taken->size());
        if (!taken->empty()) {
          auto mx = tc.Exec("SELECT GREATEST(COALESCE(max(" + tsql.Ident(tt->pk) + "), 0), " +
                            std::to_string(ids.back()) + ") FROM " + tsql.Ident(tt->name));
          int64_t next = mx.ok() ? mx->GetInt(0, 0) + 1 : 0;
          for (size_t i = 0; i < taken->size() && i < 5; ++i) {
            tp.remap_sample.push_back({(*taken)[i], next + static_cast<int64_t>(i)});
          }
          if (t.name == ctx_.profile().device_table) {
            plan.risks.push_back(NodeIdRisk(tenant, to, t.name, tp.id_remaps, tp.rows, tp.remap_sample));
          }
        }
      }
    }
  }
  return plan;
}

}  // namespace headshift::migrate
