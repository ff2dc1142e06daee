// Catalog: the structure of the tables in a database's current schema, read from pg_catalog —
// columns (with format_type() types), primary keys, the sequences behind them, foreign keys and unique
// indexes (with their predicates). headshift never hard-codes a column list: everything it copies,
// hashes or checks is derived from here plus the schema profile.
//
// Thread-safety: a Catalog is a value; ReadCatalog uses the connection it is given.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "common/pg.h"
#include "common/status.h"

namespace headshift::migrate {

struct ColumnInfo {
  std::string name;
  std::string type;  // format_type(), e.g. "bigint", "text", "character varying(63)"
  bool not_null = false;
  bool has_default = false;
  bool generated = false;  // GENERATED ALWAYS AS (...) STORED: never copied
};

struct ForeignKey {
  std::string name;
  std::vector<std::string> columns;
  std::string ref_table;
  std::vector<std::string> ref_columns;
};

struct UniqueIndex {
  std::string name;
  std::vector<std::string> columns;  // empty when the index has expressions
  std::string predicate;             // partial index WHERE clause ("" = none)
  bool primary = false;
  bool has_expressions = false;
  std::string definition;            // pg_get_indexdef()
};

struct TableInfo {
  std::string name;
  std::vector<ColumnInfo> columns;  // attnum order
  std::vector<std::string> primary_key;
  std::string pk_sequence;  // pg_get_serial_sequence of a one-column key ("" = none)
  std::vector<ForeignKey> foreign_keys;
  std::vector<UniqueIndex> unique_indexes;
  bool has_user_triggers = false;

  const ColumnInfo* Find(const std::string& column) const;
};

struct Catalog {
  std::string schema;  // current_schema()
  int server_version = 0;
  std::map<std::string, TableInfo> tables;

  const TableInfo* Find(const std::string& table) const;
};

// Reads every ordinary table of current_schema(). Read-only.
StatusOr<Catalog> ReadCatalog(PgConn& conn);

}  // namespace headshift::migrate
