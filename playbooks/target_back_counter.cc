#include "playbooks/target_back_counter.h"

namespace headshift {

TargetBackCounter::TargetBackCounter(const ClusterConfig& cluster, std::string api_key, int64_t timeout_ms)
    : reader_(cluster.control_url, std::move(api_key), cluster.debug_url, timeout_ms) {}

Status TargetBackCounter::Start(std::set<std::string> node_ids, std::string user) {
  ids_ = std::move(node_ids);
  user_ = std::move(user);
  back_.clear();
  auto now = reader_.Connected(ids_, user_);
  if (!now.ok()) return now.status();
  baseline_ = *now;
  return Status::Ok();
}

StatusOr<int64_t> TargetBackCounter::Back() {
  auto now = reader_.Connected(ids_, user_);
  if (!now.ok()) return now.status();
  for (const auto& id : *now) {
    if (!baseline_.count(id)) back_.insert(id);
  }
  return static_cast<int64_t>(back_.size());
}

StatusOr<std::unique_ptr<TargetBackCounter>> WatchTenantByApi(const ClusterConfig& cluster, const std::string& tenant,
                                                              int64_t timeout_ms) {
  std::string key;
  if (!cluster.api_key.empty()) {
    auto k = ResolveSecret(cluster.api_key, "clusters[" + cluster.id + "].api_key");
    if (!k.ok()) return k.status();
    key = *k;
  }
  HeadscaleClient api(cluster.control_url, key, timeout_ms);
  auto nodes = api.ListNodes(tenant);
  if (!nodes.ok()) return nodes.status().WithContext("cluster " + cluster.id);
  std::set<std::string> ids;
  for (const auto& n : *nodes) ids.insert(n.id);
  auto counter = std::make_unique<TargetBackCounter>(cluster, key, timeout_ms);
  HS_RETURN_IF_ERROR(counter->Start(std::move(ids), tenant));
  return counter;
}

}  // namespace headshift
