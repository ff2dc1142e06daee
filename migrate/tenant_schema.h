// TenantSchema: a schema profile resolved against one database's catalog — the tenant tables in
// foreign-key order (parents first, the root first of all), each with its one-column integer primary
// key and sequence, the columns that are copied, the columns that tie a row to the tenant (owners),
// the foreign keys whose values must be remapped when ids change, and the uniqueness rules that the
// target cluster must honour (catalog unique indexes + the profile's unique_in_cluster columns).
//
// Thread-safety: immutable after Resolve(); safe to share between threads.
#pragma once

#include <string>
#include <vector>

#include "migrate/catalog.h"
#include "migrate/schema_profile.h"

namespace headshift::migrate {

// A column pointing at the primary key of another table.
struct TableLink {
  std::string column;
  std::string ref_table;
  std::string ref_column;
};

struct TenantTable {
  std::string name;
  bool root = false;
  std::string pk;        // the one-column integer primary key
  std::string pk_type;   // "bigint" / "integer"
  std::string sequence;  // sequence behind the key ("" = none: new ids are max+1)
  bool has_cluster_column = false;
  std::vector<ColumnInfo> columns;            // copied columns, catalog order (generated ones excluded)
  std::vector<TableLink> owners;              // membership: any owner pointing at a tenant row
  std::vector<TableLink> tenant_refs;         // foreign keys into tenant tables: values remapped
  std::vector<TableLink> external_refs;       // foreign keys into other tables: must exist on the target
  std::vector<std::string> unique_in_cluster;  // from the profile
  std::vector<UniqueIndex> unique_indexes;     // catalog, primary key excluded
  bool has_user_triggers = false;
  // Tagged rows (profile tags_column, present in this database): a row whose root_owner_columns are all
  // NULL belongs to the tenant when every tag in this JSON array is owned by the tenant alone. "" = none.
  std::string tags_column;
  std::vector<std::string> root_owner_columns;  // owners referencing the root (e.g. nodes.user_id)

  const ColumnInfo* Find(const std::string& column) const;
  // Column names sorted by name: the canonical order used for row hashes (independent of the
  // physical column order, which legacy databases may have changed).
  std::vector<std::string> CanonicalColumns() const;
  // The remap link for `column`, or nullptr.
  const TableLink* TenantRef(const std::string& column) const;
};

class TenantSchema {
 public:
  // BadInput naming the table/column when the database does not match the profile: a missing table
  // or column, a key that is not one integer column, an owner without a foreign key or `references`,
  // a cluster column with different types across tables, a foreign-key cycle between tenant tables, a
  // root without the profile's cluster column, or (profile without one) a root with a fork's cluster_id.
  static StatusOr<TenantSchema> Resolve(const SchemaProfile& profile, const Catalog& catalog);

  const SchemaProfile& profile() const { return profile_; }
  // Foreign-key order: every table after the tables it references (the root first).
  const std::vector<TenantTable>& tables() const { return tables_; }
  const TenantTable* Find(const std::string& table) const;
  const TenantTable& root() const { return tables_.front(); }
  // "" when the profile has no cluster column (stock headscale, split layout): then no table has one.
  const std::string& cluster_column() const { return profile_.cluster_column; }
  // format_type() of the cluster column ("text", "bigint", "integer", ...; "" without one).
  const std::string& cluster_type() const { return cluster_type_; }
  bool ClusterIsInteger() const;
  // Tables outside the profile (and not static, not headshift_*) that have a foreign key into a tenant
  // table: moving the tenant would orphan or drag their rows, so preflight refuses.
  const std::vector<std::string>& unclassified() const { return unclassified_; }

 private:
  SchemaProfile profile_;
  std::vector<TenantTable> tables_;
  std::string cluster_type_;
  std::vector<std::string> unclassified_;
};

}  // namespace headshift::migrate
