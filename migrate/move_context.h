// MoveContext: what every migrate step shares for one TenantMover — the cluster databases, the schema
// profile, and each database's catalog and resolved tenant schema (read once, cached).
//
// Thread-safety: not thread-safe.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "migrate/catalog.h"
#include "migrate/copy_state.h"
#include "migrate/cluster_databases.h"
#include "migrate/row_sql.h"
#include "migrate/schema_profile.h"
#include "migrate/tag_ownership.h"
#include "migrate/tenant_schema.h"

namespace headshift::migrate {

class MoveContext {
 public:
  MoveContext(ClusterDatabases& dbs, SchemaProfile profile) : dbs_(dbs), profile_(std::move(profile)) {}

  ClusterDatabases& dbs() { return dbs_; }
  const SchemaProfile& profile() const { return profile_; }
  bool shared() const { return dbs_.shared(); }

  // The catalog of `cluster`'s database (cached).
  StatusOr<const Catalog*> CatalogOf(const std::string& cluster);
  // The profile resolved against `cluster`'s database (cached). BadInput when they do not match.
  StatusOr<const TenantSchema*> Schema(const std::string& cluster);
  // Reads the catalogs of several clusters' databases at once (one thread per database), so a step
  // touching two databases pays for one catalog read. Optional: Schema()/CatalogOf() load lazily.
  Status Prefetch(const std::vector<std::string>& clusters);
  // Forgets cached catalogs (after DDL).
  void Invalidate() { cache_.clear(); }

  // Who owns which ACL tags (tag_ownership.h): makes a tenant's tagged devices (no user, tags owned by
  // the tenant alone) part of its rows. Default empty: no device is the tenant's by its tags.
  void SetTagOwnership(TagOwnership ownership) { tags_ = std::move(ownership); }
  const TagOwnership& tag_ownership() const { return tags_; }

  // How the tenant's rows are found in `cluster`'s database: root rows by key, plus the cluster column in
  // the shared layout (in split, the database is the cluster); tagged rows by the tags the tenant owns
  // alone in tag_ownership().
  TenantSelector Selector(const std::string& tenant, const std::string& cluster) const;
  // The same for the steps after a copy: the tags recorded by the copy when it recorded them (so that a
  // resumed verify/catch-up/retire/rollback selects the rows the copy moved, whatever the policy says
  // now), else tag_ownership()'s.
  TenantSelector Selector(const std::string& tenant, const std::string& cluster, const CopyHeader& recorded) const;
  // A predicate limiting `alias`'s rows to `cluster` (shared: the cluster column; split: TRUE).
  std::string ClusterScope(const RowSql& sql, const TenantTable& t, const std::string& alias,
                           const std::string& cluster) const;
  // Checks that `cluster` is a value the cluster column can hold (an integer for integer columns).
  Status CheckClusterValue(const TenantSchema& schema, const std::string& cluster) const;

 private:
  struct Entry {
    Catalog catalog;
    std::unique_ptr<TenantSchema> schema;
    Status schema_status;
  };
  StatusOr<Entry*> Load(const std::string& cluster);
  Entry* Store(const std::string& cluster, Catalog catalog);

  ClusterDatabases& dbs_;
  SchemaProfile profile_;
  TagOwnership tags_;
  std::map<std::string, std::unique_ptr<Entry>> cache_;  // by database key
};

}  // namespace headshift::migrate
