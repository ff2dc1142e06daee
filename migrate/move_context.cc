#include "migrate/move_context.h"

#include <cctype>
#include <thread>

namespace headshift::migrate {

StatusOr<MoveContext::Entry*> MoveContext::Load(const std::string& cluster) {
  std::string key = dbs_.DatabaseKey(cluster);
  auto it = cache_.find(key);
  if (it != cache_.end()) return it->second.get();
  auto conn = dbs_.Conn(cluster);
  if (!conn.ok()) return conn.status();
  auto cat = ReadCatalog(**conn);
  if (!cat.ok()) return cat.status().WithContext("cluster " + cluster);
  return Store(cluster, std::move(*cat));
}

Status MoveContext::Prefetch(const std::vector<std::string>& clusters) {
  HS_RETURN_IF_ERROR(dbs_.ConnectAll(clusters));
  std::vector<std::string> todo;
  std::vector<PgConn*> conns;
  for (const auto& c : clusters) {
    std::string key = dbs_.DatabaseKey(c);
    if (cache_.count(key)) continue;
    bool dup = false;
    for (const auto& t : todo) dup |= dbs_.DatabaseKey(t) == key;
    if (dup) continue;
    auto conn = dbs_.Conn(c);
    if (!conn.ok()) return conn.status();
    todo.push_back(c);
    conns.push_back(*conn);
  }
  std::vector<StatusOr<Catalog>> results(todo.size(), Status::Failed("not read"));
  std::vector<std::thread> threads;
  for (size_t i = 0; i < todo.size(); ++i) {
    threads.emplace_back([&, i] { results[i] = ReadCatalog(*conns[i]); });
  }
  for (auto& t : threads) t.join();
  for (size_t i = 0; i < todo.size(); ++i) {
    if (!results[i].ok()) return results[i].status().WithContext("cluster " + todo[i]);
    Store(todo[i], std::move(*results[i]));
  }
  return Status::Ok();
}

MoveContext::Entry* MoveContext::Store(const std::string& cluster, Catalog catalog) {
  auto e = std::make_unique<Entry>();
  e->catalog = std::move(catalog);
  auto s = TenantSchema::Resolve(profile_, e->catalog);
  if (s.ok()) {
    e->schema = std::make_unique<TenantSchema>(std::move(*s));
  } else {
    e->schema_status = s.status().WithContext(dbs_.shared() ? "database" : "database of cluster " + cluster);
  }
  Entry* raw = e.get();
  cache_[dbs_.DatabaseKey(cluster)] = std::move(e);
  return raw;
}

StatusOr<const Catalog*> MoveContext::CatalogOf(const std::string& cluster) {
  auto e = Load(cluster);
  if (!e.ok()) return e.status();
  return &(*e)->catalog;
}

StatusOr<const TenantSchema*> MoveContext::Schema(const std::string& cluster) {
  auto e = Load(cluster);
  if (!e.ok()) return e.status();
  if (!(*e)->schema) return (*e)->schema_status;
  return static_cast<const TenantSchema*>((*e)->schema.get());
}

TenantSelector MoveContext::Selector(const std::string& tenant, const std::string& cluster) const {
  TenantSelector s;
  s.tenant = tenant;
  if (dbs_.shared()) s.cluster = cluster;
  s.owned_tags = tags_.OwnedOnlyBy(tenant);
  return s;
}

TenantSelector MoveContext::Selector(const std::string& tenant, const std::string& cluster,
                                     const CopyHeader& recorded) const {
  TenantSelector s = Selector(tenant, cluster);
  if (recorded.owned_tags) s.owned_tags = *recorded.owned_tags;
  return s;
}

std::string MoveContext::ClusterScope(const RowSql& sql, const TenantTable& t, const std::string& alias,
                                      const std::string& cluster) const {
  if (!dbs_.shared() || !t.has_cluster_column) return "TRUE";
  return alias + "." + sql.Ident(profile_.cluster_column) + " = " + sql.ClusterValue(cluster);
}

Status MoveContext::CheckClusterValue(const TenantSchema& schema, const std::string& cluster) const {
  if (!schema.ClusterIsInteger()) return Status::Ok();
  bool digits = !cluster.empty() && cluster.size() <= 18;
  for (size_t i = 0; i < cluster.size() && digits; ++i) {
    digits = std::isdigit(static_cast<unsigned char>(cluster[i])) || (i == 0 && cluster[i] == '-' && cluster.size() > 1);
  }
  if (digits) return Status::Ok();
  return Status::BadInput("cluster id '" + cluster + "' is not an integer, but " + profile_.cluster_column + " is " +
                              schema.cluster_type(),
                          "use the numeric cluster_id values as cluster ids in headshift.yaml");
}

}  // namespace headshift::migrate
