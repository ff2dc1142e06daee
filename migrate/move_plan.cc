#include "migrate/move_plan.h"

#include <sstream>

namespace headshift::migrate {

namespace {
constexpr size_t kMessageValues = 5;      // values named in a message
constexpr size_t kReportedValues = 1000;  // values kept in Conflict::values
}  // namespace

std::string SampleValues(const std::vector<std::string>& values) {
  std::string s;
  for (size_t i = 0; i < values.size() && i < kMessageValues; ++i) s += (i ? ", " : "") + values[i];
  if (values.size() > kMessageValues) s += " and " + std::to_string(values.size() - kMessageValues) + " more";
  return s;
}

std::vector<std::string> CapValues(std::vector<std::string> values) {
  if (values.size() > kReportedValues) values.resize(kReportedValues);
  return values;
}

nlohmann::json Conflict::ToJson() const {
  return {{"kind", kind}, {"table", table}, {"column", column}, {"message", message}, {"fix", fix},
          {"values", values}};
}

int64_t MovePlan::TotalRows() const {
  int64_t n = 0;
  for (const auto& t : tables) n += t.rows;
  return n;
}

Status MovePlan::ToStatus() const {
  if (conflicts.empty()) return Status::Ok();
  std::ostringstream msg;
  msg << "preflight refused moving tenant " << tenant << " from cluster " << from << " to " << to << ": "
      << conflicts.size() << " conflict(s)";
  std::ostringstream fixes;
  for (const auto& c : conflicts) {
    msg << "\n  - [" << c.kind << "] " << c.message;
    if (!c.fix.empty()) msg << " (fix: " << c.fix << ")";
  }
  return Status::Refused(msg.str(), "resolve every conflict listed, then run the migration again; nothing was changed");
}

nlohmann::json MovePlan::ToJson() const {
  nlohmann::json tabs = nlohmann::json::array();
  nlohmann::json rows = nlohmann::json::object();
  for (const auto& t : tables) {
    nlohmann::json sample = nlohmann::json::array();
    for (const auto& [o, n] : t.remap_sample) sample.push_back({{"old", o}, {"new", n}});
    tabs.push_back({{"table", t.table}, {"rows", t.rows}, {"id_remaps", t.id_remaps}, {"remap_sample", sample}});
    rows[t.table] = t.rows;
  }
  nlohmann::json conf = nlohmann::json::array();
  for (const auto& c : conflicts) conf.push_back(c.ToJson());
  return {{"tenant", tenant}, {"from", from},       {"to", to},           {"layout", layout},
          {"profile", profile}, {"cluster_column", cluster_column}, {"cluster_type", cluster_type},
          {"tables", tabs},     {"rows", rows},     {"conflicts", conf},  {"risks", risks}, {"ok", ok()}};
}

std::string MovePlan::ToText() const {
  std::ostringstream o;
  o << "tenant " << tenant << ": cluster " << from << " -> " << to << " (" << layout << " layout, profile "
    << profile << ", " << (cluster_column.empty() ? "no cluster column" : cluster_column + " " + cluster_type) << ")\n";
  for (const auto& t : tables) {
    o << "  " << t.table << ": " << t.rows << " row(s)";
    if (t.id_remaps) o << ", " << t.id_remaps << " id(s) taken on the target (remapped)";
    o << "\n";
  }
  for (const auto& r : risks) o << "  risk: " << r << "\n";
  if (conflicts.empty()) {
    o << "no conflicts\n";
  } else {
    o << conflicts.size() << " conflict(s):\n";
    for (const auto& c : conflicts) {
      o << "  [" << c.kind << "] " << c.message << "\n";
      if (!c.fix.empty()) o << "      fix: " << c.fix << "\n";
    }
  }
  return o.str();
}

}  // namespace headshift::migrate
