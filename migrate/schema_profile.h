// SchemaProfile: what a tenant is in a given database schema. It names the tenant root table and its
// key column, the tables whose rows move with a tenant (and the columns tying them to it), the values
// that must stay unique within a cluster, and the tables that never move. Everything structural
// (columns, types, keys) comes from the catalog (migrate/catalog.h); the profile adds only meaning.
//
// The default profile describes headscale (migrate/profiles/headscale.yaml, compiled in). A fork that
// adds tables ships its own YAML file (`database.schema_profile`), no code change needed.
//
// Thread-safety: a SchemaProfile is a value.
#pragma once

#include <map>
#include <set>
#include <string>
#include <vector>

#include "common/config.h"
#include "common/status.h"

namespace headshift::migrate {

// A column tying a row to the tenant. `references` is empty when the catalog's foreign key says
// which table it points to.
struct ProfileOwner {
  std::string column;
  std::string references;
};

struct ProfileTable {
  std::string table;
  std::vector<ProfileOwner> owners;            // at least one
  std::vector<std::string> unique_in_cluster;  // values that must not exist on the target cluster
  // Tagged rows: a JSON array of tags (headscale's nodes.tags / pre_auth_keys.tags). A row whose owners
  // pointing at the tenant root are all NULL belongs to the tenant when every tag in it is owned by the
  // tenant alone (tag_ownership.h). "" = the table has no tagged rows. A database version without the
  // column has no tagged rows either.
  std::string tags_column;
  // The table may be absent (a fork's table, e.g. acl_policies): then it is skipped, not an error.
  bool optional = false;
};

struct SchemaProfile {
  std::string name;                    // shown in plans, e.g. "headscale"
  std::string origin;                  // file path, or "built-in"
  // The column telling clusters apart (e.g. cluster_id). Empty = none: stock headscale, where every
  // node has a database of its own and the cluster is the DSN (split layout only); written
  // `cluster_column: none` in a profile or `database.cluster_column: none` in headshift.yaml.
  std::string cluster_column;
  // With no cluster column: the column a multi-cluster fork would have (the profile's cluster_column
  // that database.cluster_column: none switched off, else cluster_id). A database that has it on the
  // tenant root is refused (the copy would not rewrite it).
  std::string forbidden_cluster_column;
  std::string root_table;              // e.g. users
  std::string root_key;                // e.g. name
  std::string device_table;            // e.g. nodes (must be the root or a tenant table)
  std::string device_soft_delete;      // e.g. deleted_at (optional)
  std::vector<ProfileTable> tables;    // tenant tables besides the root
  std::vector<std::string> static_tables;
  // Credential columns (table -> columns): their values are never reported or journaled, only whether
  // they differ. Always includes kBuiltinSecretColumns; a profile can add more (`secret_columns`).
  // Columns a database version lacks are ignored, so one profile covers every headscale version.
  std::map<std::string, std::set<std::string>> secret_columns;

  bool HasClusterColumn() const { return !cluster_column.empty(); }
  // "cluster_id bigint", or "no cluster column (stock headscale, split layout)": for plans and doctor.
  std::string DescribeClusterColumn(const std::string& type) const;
  bool IsTenantTable(const std::string& t) const;
  bool IsSecretColumn(const std::string& table, const std::string& column) const;
  bool IsStatic(const std::string& t) const;
};

// What a credential column's value is replaced with in reports and the journal.
inline constexpr const char* kSecretValue = "<secret>";

// Masked in every profile, whatever it lists: headscale's pre-auth keys (`key` holds legacy plaintext
// keys, `hash` the bcrypt of newer ones) and API keys (`hash`, bcrypt).
const std::map<std::string, std::set<std::string>>& BuiltinSecretColumns();

// Parses profile YAML. Unknown keys, missing fields, duplicate tables and a device table that is not a
// tenant table are BadInput naming the key (and line/column).
StatusOr<SchemaProfile> ParseSchemaProfile(const std::string& yaml_text, const std::string& origin);
// `path` empty = the built-in headscale profile; otherwise reads and parses the file.
StatusOr<SchemaProfile> LoadSchemaProfile(const std::string& path);
// The profile a config uses: LoadSchemaProfile(db.schema_profile) with db.cluster_column applied, checked
// against the layout by CheckProfileLayout().
StatusOr<SchemaProfile> LoadConfiguredProfile(const DatabaseConfig& db);
// BadInput (exit 2) naming the key when the profile has no cluster column but the layout is shared (one
// database holding every cluster's rows needs the column to tell them apart).
Status CheckProfileLayout(const SchemaProfile& profile, DbLayout layout);

// What a database without a cluster column is called in plans and doctor output.
inline constexpr const char* kStockLayoutLabel = "no cluster column (stock headscale, split layout)";

// The text of the built-in profile (migrate/profiles/headscale.yaml).
const std::string& DefaultSchemaProfileYaml();

}  // namespace headshift::migrate
