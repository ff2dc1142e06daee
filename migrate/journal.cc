#include "migrate/journal.h"

#include <algorithm>
#include <chrono>
#include <ctime>
#include <map>
#include <random>
#include <set>

#include "common/redact.h"
#include "migrate/headshift_tables.h"

namespace headshift::migrate {
namespace {

constexpr const char* kTs = "to_char(%s AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')";

std::string Ts(const std::string& col) {
  char buf[256];
  snprintf(buf, sizeof buf, kTs, col.c_str());
  return buf;
}

nlohmann::json ParseDetails(const std::string& text) {
  auto j = nlohmann::json::parse(text, nullptr, false);
  return j.is_object() ? j : nlohmann::json::object();
}

// What the journal stores: every string in `details` (keys and values, at any depth) passed through
// Redact(). Step details carry error messages and external output (a reload command's stdout), which
// can hold a DSN password or an API key; the journal outlives this process and is printed by `status`
// in processes that may not have registered the same secrets. Redacting the decoded strings (not the
// dumped text) also catches secrets that JSON escaping would change.
nlohmann::json RedactedDetails(const nlohmann::json& details) {
  if (details.is_string()) return Redact(details.get_ref<const std::string&>());
  if (details.is_array()) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& v : details) out.push_back(RedactedDetails(v));
    return out;
  }
  if (details.is_object()) {
    nlohmann::json out = nlohmann::json::object();
    for (auto it = details.begin(); it != details.end(); ++it) out[Redact(it.key())] = RedactedDetails(it.value());
    return out;
  }
  return details;
}

// Rows of headshift_journal → records (grouped by id, order of first appearance).
std::vector<MigrationRecord> Group(const PgResult& r) {
  std::vector<MigrationRecord> out;
  std::map<std::string, size_t> index;
  for (int i = 0; i < r.rows(); ++i) {
    std::string id = r.Get(i, 0);
    auto it = index.find(id);
    if (it == index.end()) {
      index[id] = out.size();
      MigrationRecord m;
      m.id = id;
      m.tenant = r.Get(i, 1);
      m.from = r.Get(i, 2);
      m.to = r.Get(i, 3);
      out.push_back(std::move(m));
      it = index.find(id);
    }
    MigrationRecord& m = out[it->second];
    std::string step = r.Get(i, 4);
    if (step == Journal::kMigrationStep) {
      m.state = r.Get(i, 5);
      m.started_at = r.Get(i, 6);
      m.finished_at = r.Get(i, 7);
      m.details = ParseDetails(r.Get(i, 8));
    } else {
      m.steps.push_back({step, r.Get(i, 5), r.Get(i, 6), r.Get(i, 7), ParseDetails(r.Get(i, 8))});
    }
  }
  return out;
}

std::string SelectSql(const std::string& where) {
  return "SELECT id, tenant, from_cluster, to_cluster, step, state, " + Ts("started_at") + ", " +
         "COALESCE(" + Ts("finished_at") + ", ''), details::text FROM headshift_journal " + where +
         " ORDER BY seq";
}

}  // namespace

const JournalStep* MigrationRecord::LastStep() const { return steps.empty() ? nullptr : &steps.back(); }

const JournalStep* MigrationRecord::Step(const std::string& name) const {
  for (const auto& s : steps) {
    if (s.step == name) return &s;
  }
  return nullptr;
}

nlohmann::json MigrationRecord::ToJson() const {
  nlohmann::json st = nlohmann::json::array();
  for (const auto& s : steps) {
    st.push_back({{"step", s.step}, {"state", s.state}, {"started_at", s.started_at},
                  {"finished_at", s.finished_at}, {"details", s.details}});
  }
  return {{"id", id},          {"tenant", tenant},           {"from", from},       {"to", to},
          {"state", state},    {"started_at", started_at},   {"finished_at", finished_at},
          {"details", details}, {"steps", st}};
}

std::string Journal::NewMigrationId() {
  std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char ts[32];
  std::strftime(ts, sizeof ts, "%Y%m%dT%H%M%S", &tm);
  std::random_device rd;
  char rnd[16];
  snprintf(rnd, sizeof rnd, "%08x", rd());
  return std::string("m-") + ts + "-" + rnd;
}

StatusOr<PgConn*> Journal::Home(const MigrationRecord& m) {
  auto c = dbs_.JournalConn(m.to);
  if (!c.ok()) return c.status().WithContext("opening the journal database");
  return c;
}

StatusOr<MigrationRecord> Journal::Create(const std::string& tenant, const std::string& from, const std::string& to,
                                          const std::string& id, const nlohmann::json& details) {
  MigrationRecord m;
  m.id = id.empty() ? NewMigrationId() : id;
  m.tenant = tenant;
  m.from = from;
  m.to = to;
  auto c = Home(m);
  if (!c.ok()) return c.status();
  HS_RETURN_IF_ERROR(EnsureHeadshiftTables(**c));
  auto r = (*c)->Exec(
      "INSERT INTO headshift_journal (id, tenant, from_cluster, to_cluster, step, state, details) "
      "VALUES ($1, $2, $3, $4, $5, 'running', $6::jsonb) ON CONFLICT (id, step) DO NOTHING RETURNING " +
          Ts("started_at"),
      {m.id, tenant, from, to, kMigrationStep, RedactedDetails(details).dump()});
  if (!r.ok()) return r.status().WithContext("recording migration " + m.id);
  if (r->rows() == 0) {
    return Status::Refused("migration id " + m.id + " already exists in the journal",
                           "use `headshift resume " + m.id + "`, or pick another id");
  }
  m.state = "running";
  m.started_at = r->Get(0, 0);
  m.details = RedactedDetails(details);
  return m;
}

Status Journal::StartStep(const MigrationRecord& m, const std::string& step, const nlohmann::json& details) {
  if (step == kMigrationStep) return Status::BadInput("'migration' is not a step name");
  auto c = Home(m);
  if (!c.ok()) return c.status();
  HS_RETURN_IF_ERROR(EnsureHeadshiftTables(**c));
  const nlohmann::json redacted = RedactedDetails(details);
  nlohmann::json d = redacted;
  d["attempts"] = 1;
  auto r = (*c)->Exec(
      "INSERT INTO headshift_journal (id, tenant, from_cluster, to_cluster, step, state, details) "
      "VALUES ($1, $2, $3, $4, $5, 'running', $6::jsonb) "
      "ON CONFLICT (id, step) DO UPDATE SET state = 'running', started_at = now(), finished_at = NULL, "
      "  details = headshift_journal.details || $7::jsonb || jsonb_build_object('attempts', "
      "    COALESCE((headshift_journal.details->>'attempts')::int, 1) + 1)",
      {m.id, m.tenant, m.from, m.to, step, d.dump(), redacted.dump()});
  if (!r.ok()) return r.status().WithContext("journal: starting step " + step + " of " + m.id);
  return Status::Ok();
}

Status Journal::FinishStep(const MigrationRecord& m, const std::string& step, const std::string& state,
                           const nlohmann::json& details) {
  auto c = Home(m);
  if (!c.ok()) return c.status();
  auto r = (*c)->Exec(
      "UPDATE headshift_journal SET state = $3, finished_at = CASE WHEN $3 = 'running' THEN NULL ELSE now() END, "
      "details = details || $4::jsonb WHERE id = $1 AND step = $2",
      {m.id, step, state, RedactedDetails(details).dump()});
  if (!r.ok()) return r.status().WithContext("journal: finishing step " + step + " of " + m.id);
  if (std::string(PQcmdTuples(r->get())) == "0") {
    return Status::BadInput("journal: step " + step + " of migration " + m.id + " was never started",
                            "call StartStep first");
  }
  return Status::Ok();
}

Status Journal::SetState(const MigrationRecord& m, const std::string& state, const nlohmann::json& details) {
  return FinishStep(m, kMigrationStep, state, details);
}

StatusOr<MigrationRecord> Journal::Get(const std::string& id) {
  for (const auto& home : dbs_.JournalHomes()) {
    auto c = dbs_.JournalConn(home);
    if (!c.ok()) return c.status().WithContext("opening the journal database");
    auto exists = TableExists(**c, "headshift_journal");
    if (!exists.ok()) return exists.status();
    if (!*exists) continue;
    auto r = (*c)->Exec(SelectSql("WHERE id = $1"), {id});
    if (!r.ok()) return r.status().WithContext("reading the journal");
    auto recs = Group(*r);
    if (!recs.empty()) return recs.front();
  }
  return Status::BadInput("no migration with id " + id + " in the journal",
                          "list migrations with `headshift status`");
}

StatusOr<std::vector<MigrationRecord>> Journal::List(const std::optional<std::string>& tenant) {
  std::vector<MigrationRecord> all;
  for (const auto& home : dbs_.JournalHomes()) {
    auto c = dbs_.JournalConn(home);
    if (!c.ok()) return c.status().WithContext("opening the journal database");
    auto exists = TableExists(**c, "headshift_journal");
    if (!exists.ok()) return exists.status();
    if (!*exists) continue;
    auto r = tenant ? (*c)->Exec(SelectSql("WHERE tenant = $1"), {*tenant}) : (*c)->Exec(SelectSql(""));
    if (!r.ok()) return r.status().WithContext("reading the journal");
    for (auto& m : Group(*r)) all.push_back(std::move(m));
  }
  std::stable_sort(all.begin(), all.end(),
                   [](const MigrationRecord& a, const MigrationRecord& b) { return a.started_at > b.started_at; });
  return all;
}

}  // namespace headshift::migrate
