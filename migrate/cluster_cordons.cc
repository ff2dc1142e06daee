#include "migrate/cluster_cordons.h"

#include "migrate/headshift_tables.h"

namespace headshift::migrate {

Status ClusterCordons::Set(const std::string& cluster, bool cordoned, const std::string& reason) {
  HS_RETURN_IF_ERROR(dbs_.CheckKnown(cluster, "the"));
  auto c = dbs_.JournalConn(cluster);
  if (!c.ok()) return c.status();
  HS_RETURN_IF_ERROR(EnsureHeadshiftTables(**c));
  auto r = (*c)->Exec(
      "INSERT INTO headshift_clusters (id, cordoned, reason, updated_at) VALUES ($1, $2::boolean, $3, now()) "
      "ON CONFLICT (id) DO UPDATE SET cordoned = EXCLUDED.cordoned, reason = EXCLUDED.reason, updated_at = now()",
      {cluster, cordoned ? "true" : "false", reason});
  if (!r.ok()) return r.status().WithContext(std::string(cordoned ? "cordoning" : "uncordoning") + " cluster " + cluster);
  return Status::Ok();
}

Status ClusterCordons::Cordon(const std::string& cluster, const std::string& reason) {
  return Set(cluster, true, reason);
}

Status ClusterCordons::Uncordon(const std::string& cluster) { return Set(cluster, false, ""); }

StatusOr<CordonState> ClusterCordons::Get(const std::string& cluster) {
  HS_RETURN_IF_ERROR(dbs_.CheckKnown(cluster, "the"));
  auto c = dbs_.JournalConn(cluster);
  if (!c.ok()) return c.status();
  auto exists = TableExists(**c, "headshift_clusters");
  if (!exists.ok()) return exists.status();
  CordonState s;
  if (!*exists) return s;
  auto r = (*c)->Exec(
      "SELECT cordoned, reason, to_char(updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') "
      "FROM headshift_clusters WHERE id = $1",
      {cluster});
  if (!r.ok()) return r.status().WithContext("reading the cordon of cluster " + cluster);
  if (r->rows() == 1) s = {r->Get(0, 0) == "t", r->Get(0, 1), r->Get(0, 2)};
  return s;
}

StatusOr<bool> ClusterCordons::IsCordoned(const std::string& cluster) {
  auto s = Get(cluster);
  if (!s.ok()) return s.status();
  return s->cordoned;
}

StatusOr<std::map<std::string, CordonState>> ClusterCordons::All() {
  std::map<std::string, CordonState> out;
  for (const auto& id : dbs_.cluster_ids()) {
    auto s = Get(id);
    if (!s.ok()) return s.status();
    out[id] = *s;
  }
  return out;
}

}  // namespace headshift::migrate
