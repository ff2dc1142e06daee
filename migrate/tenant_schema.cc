#include "migrate/tenant_schema.h"

#include <algorithm>
#include <map>
#include <set>

namespace headshift::migrate {
namespace {

bool IsIntegerType(const std::string& t) { return t == "bigint" || t == "integer" || t == "smallint"; }

const std::string kProfileFix = "fix the schema profile (database.schema_profile) or the database schema";

}  // namespace

const ColumnInfo* TenantTable::Find(const std::string& column) const {
  for (const auto& c : columns) {
    if (c.name == column) return &c;
  }
  return nullptr;
}

std::vector<std::string> TenantTable::CanonicalColumns() const {
  std::vector<std::string> out;
  for (const auto& c : columns) out.push_back(c.name);
  std::sort(out.begin(), out.end());
  return out;
}

const TableLink* TenantTable::TenantRef(const std::string& column) const {
  for (const auto& l : tenant_refs) {
    if (l.column == column) return &l;
  }
  return nullptr;
}

const TenantTable* TenantSchema::Find(const std::string& table) const {
  for (const auto& t : tables_) {
    if (t.name == table) return &t;
  }
  return nullptr;
}

bool TenantSchema::ClusterIsInteger() const { return IsIntegerType(cluster_type_); }

StatusOr<TenantSchema> TenantSchema::Resolve(const SchemaProfile& profile, const Catalog& catalog) {
  TenantSchema s;
  s.profile_ = profile;
  std::vector<std::string> names = {profile.root_table};
  for (const auto& t : profile.tables) {
    if (t.optional && !catalog.Find(t.table)) continue;  // a fork's table this database does not have
    names.push_back(t.table);
  }
  std::set<std::string> tenant_set(names.begin(), names.end());

  std::map<std::string, TenantTable> resolved;
  for (const auto& name : names) {
    const TableInfo* info = catalog.Find(name);
    if (!info) {
      return Status::BadInput("schema profile '" + profile.name + "' names table " + name +
                                  ", which does not exist in schema " + catalog.schema,
                              kProfileFix);
    }
    TenantTable t;
    t.name = name;
    t.root = name == profile.root_table;
    if (info->primary_key.size() != 1) {
      return Status::BadInput("tenant table " + name + " needs a one-column primary key (it has " +
                                  std::to_string(info->primary_key.size()) + " columns)",
                              kProfileFix);
    }
    t.pk = info->primary_key[0];
    const ColumnInfo* pkc = info->Find(t.pk);
    if (!pkc || !IsIntegerType(pkc->type)) {
      return Status::BadInput("tenant table " + name + ": primary key " + t.pk + " is " +
                                  (pkc ? pkc->type : "missing") + ", not an integer",
                              "headshift remaps integer ids only; " + kProfileFix);
    }
    t.pk_type = pkc->type;
    t.sequence = info->pk_sequence;
    t.has_user_triggers = info->has_user_triggers;
    for (const auto& c : info->columns) {
      if (!c.generated) t.columns.push_back(c);
    }
    if (!profile.HasClusterColumn()) {
      // Stock headscale: the database is the cluster. A fork's cluster column here would keep the
      // source's value on the target (nothing rewrites it), so such a database is refused.
      if (t.root && !profile.forbidden_cluster_column.empty() && info->Find(profile.forbidden_cluster_column)) {
        return Status::BadInput("tenant root table " + name + " has a " + profile.forbidden_cluster_column +
                                    " column, but the configuration says there is no cluster column "
                                    "(database.cluster_column: none)",
                                "this is a multi-cluster fork schema: remove database.cluster_column: none (or set it "
                                "to " + profile.forbidden_cluster_column + ") so the copy rewrites " +
                                    profile.forbidden_cluster_column);
      }
    } else if (const ColumnInfo* cc = info->Find(profile.cluster_column)) {
      t.has_cluster_column = true;
      if (s.cluster_type_.empty()) {
        s.cluster_type_ = cc->type;
      } else if (s.cluster_type_ != cc->type) {
        return Status::BadInput("the cluster column " + profile.cluster_column + " is " + s.cluster_type_ +
                                    " on one tenant table but " + cc->type + " on " + name,
                                "give " + profile.cluster_column + " one type on every tenant table");
      }
    } else if (t.root) {
      return Status::BadInput("tenant root table " + name + " has no " + profile.cluster_column + " column",
                              "stock headscale has no cluster column (one database per node, the cluster is the "
                              "DSN): set database.cluster_column: none with database.layout: split; or " + kProfileFix);
    }
    // Foreign keys: into tenant tables (remapped) or elsewhere (must exist on the target).
    for (const auto& fk : info->foreign_keys) {
      if (fk.columns.size() != 1) continue;  // composite keys cannot point at a one-column key
      TableLink l{fk.columns[0], fk.ref_table, fk.ref_columns.empty() ? "" : fk.ref_columns[0]};
      (tenant_set.count(fk.ref_table) ? t.tenant_refs : t.external_refs).push_back(l);
    }
    for (const auto& u : info->unique_indexes) {
      if (!u.primary) t.unique_indexes.push_back(u);
    }
    resolved[name] = std::move(t);
  }

  // Owners and unique_in_cluster from the profile.
  for (const auto& pt : profile.tables) {
    if (!tenant_set.count(pt.table)) continue;  // optional and absent
    TenantTable& t = resolved[pt.table];
    const TableInfo* info = catalog.Find(pt.table);
    for (const auto& o : pt.owners) {
      if (!info->Find(o.column)) {
        return Status::BadInput("schema profile: owner column " + pt.table + "." + o.column + " does not exist",
                                kProfileFix);
      }
      TableLink link;
      link.column = o.column;
      if (!o.references.empty()) {
        if (!tenant_set.count(o.references)) {
          return Status::BadInput("schema profile: owner " + pt.table + "." + o.column + " references " +
                                      o.references + ", which is not a tenant table",
                                  kProfileFix);
        }
        link.ref_table = o.references;
        link.ref_column = resolved[o.references].pk;
        if (!t.TenantRef(o.column)) t.tenant_refs.push_back(link);  // remap it like a real FK
      } else if (const TableLink* fk = t.TenantRef(o.column)) {
        link = *fk;
      } else {
        return Status::BadInput("schema profile: owner " + pt.table + "." + o.column +
                                    " has no foreign key into a tenant table",
                                "write {column: " + o.column + ", references: <table>} in the profile");
      }
      if (link.ref_column != resolved[link.ref_table].pk) {
        return Status::BadInput("owner " + pt.table + "." + o.column + " references " + link.ref_table + "." +
                                    link.ref_column + ", not its primary key",
                                kProfileFix);
      }
      t.owners.push_back(link);
    }
    for (const auto& u : pt.unique_in_cluster) {
      if (!info->Find(u)) {
        return Status::BadInput("schema profile: unique_in_cluster column " + pt.table + "." + u + " does not exist",
                                kProfileFix);
      }
    }
    t.unique_in_cluster = pt.unique_in_cluster;
    // Tagged rows: only where this database version has the column (headscale < 0.28 has none).
    if (!pt.tags_column.empty() && info->Find(pt.tags_column)) t.tags_column = pt.tags_column;
  }
  // The owners tying a row to the root directly: NULL on every one of them marks a tagged row.
  for (auto& [name, t] : resolved) {
    for (const auto& o : t.owners) {
      if (o.ref_table == profile.root_table) t.root_owner_columns.push_back(o.column);
    }
    if (t.root_owner_columns.empty()) t.tags_column.clear();  // no user column: tags cannot decide
  }
  for (auto& [name, t] : resolved) {
    for (const auto& l : t.tenant_refs) {
      if (l.ref_column != resolved[l.ref_table].pk) {
        return Status::BadInput("foreign key " + name + "." + l.column + " references " + l.ref_table + "." +
                                    l.ref_column + ", not its primary key; headshift cannot remap it",
                                kProfileFix);
      }
    }
  }

  // Topological order over tenant_refs (self-references are fine: one COPY statement holds the rows).
  std::set<std::string> placed;
  s.tables_.push_back(resolved[profile.root_table]);
  placed.insert(profile.root_table);
  while (placed.size() < names.size()) {
    bool progress = false;
    for (const auto& name : names) {
      if (placed.count(name)) continue;
      const TenantTable& t = resolved[name];
      bool ready = std::all_of(t.tenant_refs.begin(), t.tenant_refs.end(), [&](const TableLink& l) {
        return l.ref_table == name || placed.count(l.ref_table);
      });
      if (ready) {
        s.tables_.push_back(t);
        placed.insert(name);
        progress = true;
      }
    }
    if (!progress) {
      std::string rest;
      for (const auto& n : names) {
        if (!placed.count(n)) rest += (rest.empty() ? "" : ", ") + n;
      }
      return Status::BadInput("foreign keys between tenant tables form a cycle (" + rest +
                                  ", or a table references the root's children before the root)",
                              "headshift copies parents before children; " + kProfileFix);
    }
  }
  // The root must not reference other tenant tables (it is copied first).
  for (const auto& l : s.root().tenant_refs) {
    if (l.ref_table != s.root().name) {
      return Status::BadInput("tenant root " + s.root().name + " references tenant table " + l.ref_table,
                              kProfileFix);
    }
  }
  if (!s.root().Find(profile.root_key)) {
    return Status::BadInput("tenant key column " + profile.root_table + "." + profile.root_key + " does not exist",
                            kProfileFix);
  }
  if (!profile.device_soft_delete.empty()) {
    const TenantTable* d = s.Find(profile.device_table);
    if (d && !d->Find(profile.device_soft_delete)) {
      return Status::BadInput("devices.soft_delete_column " + profile.device_table + "." +
                                  profile.device_soft_delete + " does not exist",
                              kProfileFix);
    }
  }

  // Tables outside the profile that point into tenant tables.
  for (const auto& [name, info] : catalog.tables) {
    if (tenant_set.count(name) || profile.IsStatic(name) || name.rfind("headshift_", 0) == 0) continue;
    for (const auto& fk : info.foreign_keys) {
      if (tenant_set.count(fk.ref_table)) {
        s.unclassified_.push_back(name);
        break;
      }
    }
  }
  return s;
}

}  // namespace headshift::migrate
