#include "sandbox/node_directory.h"

namespace headshift::sandbox {
namespace {

constexpr const char* kTs = "'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'";

// `join` is spliced after the FROM clause (the batched lookup joins the key array: a hash join, where
// `node_key = ANY(array)` would compare every row with every key; nodes has no index on node_key).
std::string SelectSql(const std::string& join = "") {
  std::string ts = kTs;
  return "SELECT n.id, COALESCE(n.node_key,''), COALESCE(n.machine_key,''), COALESCE(n.disco_key,''), "
         "COALESCE(n.endpoints,''), COALESCE(n.ipv4,''), COALESCE(n.ipv6,''), COALESCE(n.hostname,''), "
         "COALESCE(n.given_name,''), COALESCE(n.register_method,''), COALESCE(n.tags,'[]'), "
         "COALESCE(n.approved_routes,'[]'), COALESCE(floor(extract(epoch FROM n.expiry) * 1000)::bigint, 0), "
         "COALESCE(to_char(n.last_seen AT TIME ZONE 'UTC', " + ts + "), ''), "
         "COALESCE(to_char(n.created_at AT TIME ZONE 'UTC', " + ts + "), ''), "
         "COALESCE(u.id::text,''), COALESCE(u.name,''), COALESCE(u.display_name,''), COALESCE(u.email,''), "
         "COALESCE(to_char(u.created_at AT TIME ZONE 'UTC', " + ts + "), ''), COALESCE(u.provider,''), "
         "COALESCE(u.provider_identifier,''), COALESCE(u.profile_pic_url,'') "
         "FROM nodes n LEFT JOIN users u ON u.id = n.user_id " + join +
         " WHERE n.cluster_id = $1 AND n.deleted_at IS NULL ";
}

std::vector<StandinNode> Rows(const PgResult& r) {
  std::vector<StandinNode> out;
  out.reserve(static_cast<size_t>(r.rows()));
  for (int i = 0; i < r.rows(); ++i) {
    StandinNode n;
    n.id = r.GetInt(i, 0);
    n.node_key = r.Get(i, 1);
    n.machine_key = r.Get(i, 2);
    n.disco_key = r.Get(i, 3);
    n.endpoints = r.Get(i, 4);
    n.ipv4 = r.Get(i, 5);
    n.ipv6 = r.Get(i, 6);
    n.hostname = r.Get(i, 7);
    n.given_name = r.Get(i, 8);
    n.register_method = r.Get(i, 9);
    n.tags = r.Get(i, 10);
    n.approved_routes = r.Get(i, 11);
    n.expiry_ms = r.GetInt(i, 12);
    n.last_seen = r.Get(i, 13);
    n.created_at = r.Get(i, 14);
    n.user_id = r.Get(i, 15);
    n.user_name = r.Get(i, 16);
    n.user_display_name = r.Get(i, 17);
    n.user_email = r.Get(i, 18);
    n.user_created_at = r.Get(i, 19);
    n.user_provider = r.Get(i, 20);
    n.user_provider_id = r.Get(i, 21);
    n.user_picture = r.Get(i, 22);
    out.push_back(std::move(n));
  }
  return out;
}

}  // namespace

std::string PgTextArray(const std::vector<std::string>& items) {
  std::string s = "{";
  for (size_t i = 0; i < items.size(); ++i) {
    if (i) s += ',';
    s += '"';
    for (char c : items[i]) {
      if (c == '"' || c == '\\') s += '\\';
      s += c;
    }
    s += '"';
  }
  s += '}';
  return s;
}

NodeDirectory::NodeDirectory(std::string dsn, std::string cluster_id)
    : dsn_(std::move(dsn)), cluster_id_(std::move(cluster_id)) {}

Status NodeDirectory::EnsureConnected() {
  if (conn_ && conn_->Healthy()) return Status::Ok();
  conn_.reset();
  auto c = PgConn::Connect(dsn_, 3000);
  if (!c.ok()) return c.status();
  conn_ = std::move(*c);
  return Status::Ok();
}

StatusOr<PgResult> NodeDirectory::Query(const std::string& where, const std::vector<std::string>& params,
                                        const std::string& join) {
  for (int attempt = 0; attempt < 2; ++attempt) {
    HS_RETURN_IF_ERROR(EnsureConnected());
    auto r = conn_->Exec(SelectSql(join) + where, params);
    if (r.ok() || conn_->Healthy()) return r;
    conn_.reset();  // lost connection: retry once on a fresh one
  }
  return Status::Failed("database connection lost");
}

StatusOr<std::vector<StandinNode>> NodeDirectory::Lookup(const std::vector<std::string>& node_keys) {
  auto r = Query("ORDER BY n.id", {cluster_id_, PgTextArray(node_keys)},
                 "JOIN (SELECT DISTINCT unnest($2::text[]) AS key) k ON k.key = n.node_key");
  if (!r.ok()) return r.status();
  return Rows(*r);
}

StatusOr<std::vector<StandinNode>> NodeDirectory::ListAll() {
  auto r = Query("ORDER BY n.id", {cluster_id_});
  if (!r.ok()) return r.status();
  return Rows(*r);
}

StatusOr<std::vector<StandinNode>> NodeDirectory::ListByUser(const std::string& user) {
  auto r = Query("AND u.name = $2 ORDER BY n.id", {cluster_id_, user});
  if (!r.ok()) return r.status();
  return Rows(*r);
}

Status NodeDirectory::Write(const std::vector<NodeWrite>& writes) {
  if (writes.empty()) return Status::Ok();
  std::vector<std::string> ids, seen, eps;
  for (const auto& w : writes) {
    ids.push_back(std::to_string(w.id));
    seen.push_back(std::to_string(w.last_seen_ms));
    eps.push_back(w.endpoints);
  }
  const std::string sql =
      "UPDATE nodes n SET endpoints = v.ep, updated_at = now(), "
      "last_seen = CASE WHEN v.ls > 0 THEN to_timestamp(v.ls / 1000.0) ELSE n.last_seen END "
      "FROM unnest($1::bigint[], $2::bigint[], $3::text[]) AS v(id, ls, ep) "
      "WHERE n.id = v.id AND n.cluster_id = $4";
  for (int attempt = 0; attempt < 2; ++attempt) {
    HS_RETURN_IF_ERROR(EnsureConnected());
    auto r = conn_->Exec(sql, {PgTextArray(ids), PgTextArray(seen), PgTextArray(eps), cluster_id_});
    if (r.ok()) return Status::Ok();
    if (conn_->Healthy()) return r.status();
    conn_.reset();
  }
  return Status::Failed("database connection lost");
}

}  // namespace headshift::sandbox
