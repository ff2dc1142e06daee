// CopyState: what a copy recorded in the database that received it (headshift_copies and
// headshift_copy_rows, see headshift_tables.h) — its header, and per copied row the source id, the target
// id and the row hash at the last sync (copy or catch-up; equal on both sides at that moment). Verify,
// catch-up, retire and rollback read it back; resumed steps find it after a crash.
//
// Thread-safety: stateless functions over the connection given.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/pg.h"
#include "migrate/row_sql.h"

namespace headshift::migrate {

struct CopyHeader {
  std::string migration_id;
  std::string tenant;
  std::string from;
  std::string to;
  std::string layout;
  std::string copied_at;
  nlohmann::json report = nlohmann::json::object();
  bool caught_up = false;  // a catch-up ran: the cut happened, the target is authoritative
  bool retiring = false;
  bool retired = false;
  // The tags the copy selected the tenant's tagged rows by (report.owned_tags); nullopt for a copy
  // recorded before tagged devices were selected.
  std::optional<std::vector<std::string>> owned_tags;
};

struct CopyRow {
  int64_t source_id = 0;
  int64_t target_id = 0;
  int64_t hash = 0;
};

// The header of `migration_id`, or nullopt (also when headshift's tables do not exist). Read-only.
StatusOr<std::optional<CopyHeader>> ReadCopyHeader(PgConn& conn, const std::string& migration_id);
// The ids that changed (source != target), per table. Read-only.
StatusOr<IdMaps> ReadRemaps(PgConn& conn, const std::string& migration_id);
// All recorded rows per table, by source id. Read-only.
StatusOr<std::map<std::string, std::map<int64_t, CopyRow>>> ReadCopyRows(PgConn& conn,
                                                                        const std::string& migration_id);
// The header's (tenant, from, to) must match the caller's: BadInput otherwise.
Status CheckHeaderMatches(const CopyHeader& h, const std::string& tenant, const std::string& from,
                          const std::string& to);

}  // namespace headshift::migrate
