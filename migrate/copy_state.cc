#include "migrate/copy_state.h"

#include "migrate/headshift_tables.h"

namespace headshift::migrate {

StatusOr<std::optional<CopyHeader>> ReadCopyHeader(PgConn& conn, const std::string& migration_id) {
  auto exists = TableExists(conn, "headshift_copies");
  if (!exists.ok()) return exists.status();
  if (!*exists) return std::optional<CopyHeader>();
  auto r = conn.Exec(
      "SELECT migration_id, tenant, from_cluster, to_cluster, layout, "
      "to_char(copied_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'), report::text, "
      "retiring_at IS NOT NULL, retired_at IS NOT NULL, caught_up_at IS NOT NULL FROM headshift_copies WHERE migration_id = $1",
      {migration_id});
  if (!r.ok()) return r.status().WithContext("reading the copy record of " + migration_id);
  if (r->rows() == 0) return std::optional<CopyHeader>();
  CopyHeader h;
  h.migration_id = r->Get(0, 0);
  h.tenant = r->Get(0, 1);
  h.from = r->Get(0, 2);
  h.to = r->Get(0, 3);
  h.layout = r->Get(0, 4);
  h.copied_at = r->Get(0, 5);
  auto j = nlohmann::json::parse(r->Get(0, 6), nullptr, false);
  if (j.is_object()) h.report = j;
  if (h.report.contains("owned_tags") && h.report["owned_tags"].is_array()) {
    std::vector<std::string> tags;
    for (const auto& t : h.report["owned_tags"]) {
      if (t.is_string()) tags.push_back(t.get<std::string>());
    }
    h.owned_tags = std::move(tags);
  }
  h.retiring = r->Get(0, 7) == "t";
  h.retired = r->Get(0, 8) == "t";
  h.caught_up = r->Get(0, 9) == "t";
  return std::optional<CopyHeader>(h);
}

StatusOr<IdMaps> ReadRemaps(PgConn& conn, const std::string& migration_id) {
  IdMaps maps;
  auto r = conn.Exec(
      "SELECT tbl, source_id, target_id FROM headshift_copy_rows WHERE migration_id = $1 AND source_id <> target_id "
      "ORDER BY tbl, source_id",
      {migration_id});
  if (!r.ok()) return r.status().WithContext("reading the id map of " + migration_id);
  for (int i = 0; i < r->rows(); ++i) maps[r->Get(i, 0)].push_back({r->GetInt(i, 1), r->GetInt(i, 2)});
  return maps;
}

StatusOr<std::map<std::string, std::map<int64_t, CopyRow>>> ReadCopyRows(PgConn& conn,
                                                                        const std::string& migration_id) {
  std::map<std::string, std::map<int64_t, CopyRow>> out;
  auto r = conn.Exec(
      "SELECT tbl, source_id, target_id, row_hash FROM headshift_copy_rows WHERE migration_id = $1", {migration_id});
  if (!r.ok()) return r.status().WithContext("reading the copied rows of " + migration_id);
  for (int i = 0; i < r->rows(); ++i) {
    int64_t s = r->GetInt(i, 1);
    out[r->Get(i, 0)][s] = {s, r->GetInt(i, 2), r->GetInt(i, 3)};
  }
  return out;
}

Status CheckHeaderMatches(const CopyHeader& h, const std::string& tenant, const std::string& from,
                          const std::string& to) {
  if (h.tenant == tenant && h.from == from && h.to == to) return Status::Ok();
  return Status::BadInput("migration " + h.migration_id + " copied tenant " + h.tenant + " from " + h.from + " to " +
                              h.to + ", not " + tenant + " from " + from + " to " + to,
                          "pass the tenant and clusters recorded in the journal for this migration id");
}

}  // namespace headshift::migrate
