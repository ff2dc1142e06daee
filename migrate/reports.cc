#include "migrate/reports.h"

namespace headshift::migrate {
namespace {

nlohmann::json RefJson(const MoveRef& r) {
  return {{"migration_id", r.migration_id}, {"tenant", r.tenant}, {"from", r.from}, {"to", r.to}};
}

nlohmann::json IssuesJson(const std::vector<RowIssue>& v, size_t cap = 1000) {
  nlohmann::json a = nlohmann::json::array();
  for (size_t i = 0; i < v.size() && i < cap; ++i) {
    a.push_back({{"table", v[i].table}, {"source_id", v[i].source_id}, {"target_id", v[i].target_id},
                 {"what", v[i].what}});
  }
  return a;
}

nlohmann::json CountsJson(const std::vector<TableCount>& v) {
  nlohmann::json o = nlohmann::json::object();
  for (const auto& c : v) o[c.table] = c.rows;
  return o;
}

}  // namespace

int64_t CopyReport::TotalRows() const {
  int64_t n = 0;
  for (const auto& t : tables) n += t.rows;
  return n;
}

nlohmann::json CopyReport::ToJson() const {
  nlohmann::json rows = nlohmann::json::object(), tabs = nlohmann::json::array(), rem = nlohmann::json::object();
  for (const auto& t : tables) {
    rows[t.table] = t.rows;
    tabs.push_back({{"table", t.table}, {"rows", t.rows}, {"bytes", t.bytes}, {"id_remaps", t.id_remaps}, {"ms", t.ms}});
  }
  for (const auto& [table, m] : remaps) {
    nlohmann::json sample = nlohmann::json::array();
    for (size_t i = 0; i < m.size() && i < 20; ++i) sample.push_back({{"old", m[i].first}, {"new", m[i].second}});
    rem[table] = {{"count", m.size()}, {"sample", sample}};
  }
  nlohmann::json j = RefJson(ref);
  nlohmann::json phases = nlohmann::json::object();
  for (const auto& [name, ms] : phases_ms) phases[name] = ms;
  j.update({{"layout", layout}, {"rows", rows}, {"tables", tabs}, {"remaps", rem}, {"resumed", resumed},
            {"fk_checks", fk_checks}, {"elapsed_ms", elapsed_ms}, {"phases_ms", phases},
            {"owned_tags", owned_tags}});
  return j;
}

nlohmann::json VerifyReport::ToJson() const {
  nlohmann::json tabs = nlohmann::json::array();
  for (const auto& t : tables) {
    tabs.push_back({{"table", t.table}, {"source_rows", t.source_rows}, {"target_rows", t.target_rows},
                    {"copied_rows", t.copied_rows}, {"source_checksum", t.source_checksum},
                    {"target_checksum", t.target_checksum}, {"copy_checksum", t.copy_checksum},
                    {"late_writes", t.late_writes}, {"target_writes", t.target_writes},
                    {"mismatches", t.mismatches}});
  }
  nlohmann::json j = RefJson(ref);
  j.update({{"layout", layout}, {"ok", ok}, {"undone", undone}, {"tables", tabs},
            {"mismatches", IssuesJson(mismatches)}, {"late_writes", IssuesJson(late_writes)},
            {"target_writes", IssuesJson(target_writes)}, {"after_cut", after_cut},
            {"elapsed_ms", elapsed_ms}});
  return j;
}

int64_t CatchUpReport::Applied() const {
  int64_t n = 0;
  for (const auto& t : tables) n += t.updated + t.inserted + t.deleted;
  return n;
}

nlohmann::json CatchUpReport::ToJson() const {
  nlohmann::json tabs = nlohmann::json::array(), conf = nlohmann::json::array();
  for (const auto& t : tables) {
    tabs.push_back({{"table", t.table}, {"updated", t.updated}, {"inserted", t.inserted}, {"deleted", t.deleted},
                    {"target_only", t.target_only}, {"conflicts", t.conflicts}});
  }
  for (const auto& c : conflicts) {
    conf.push_back({{"table", c.table}, {"source_id", c.source_id}, {"target_id", c.target_id}, {"what", c.what},
                    {"differing_columns", c.differing_columns}, {"source_version", c.source_version}, {"target_version", c.target_version}});
  }
  nlohmann::json j = RefJson(ref);
  j.update({{"layout", layout}, {"applied", Applied()}, {"tables", tabs}, {"conflicts", conf},
            {"elapsed_ms", elapsed_ms}});
  return j;
}

nlohmann::json RetireReport::ToJson() const {
  nlohmann::json j = RefJson(ref);
  j.update({{"deleted", CountsJson(deleted)}, {"archive_schema", archive_schema},
            {"pending_late_writes", pending_late_writes}, {"already_retired", already_retired}});
  return j;
}

nlohmann::json RollbackReport::ToJson() const {
  nlohmann::json j = RefJson(ref);
  j.update({{"layout", layout}, {"rows", CountsJson(rows)}, {"discarded_target_changes", discarded_target_changes},
            {"nothing_to_do", nothing_to_do}});
  return j;
}

}  // namespace headshift::migrate
