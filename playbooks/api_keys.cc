#include "playbooks/api_keys.h"

namespace headshift {

StatusOr<std::string> ApiKeys::Get(const std::string& cluster) {
  std::lock_guard<std::mutex> lock(mu_);
  if (auto it = keys_.find(cluster); it != keys_.end()) return it->second;
  const ClusterConfig* c = config_.FindCluster(cluster);
  if (!c) return Status::BadInput("unknown cluster " + cluster);
  if (c->api_key.empty()) {
    return Status::BadInput("clusters[" + cluster + "] has no api_key_env/api_key_file",
                            "headshift reads the control plane's node list to prove it serves the tenant");
  }
  auto k = ResolveSecret(c->api_key, "clusters[" + cluster + "].api_key");
  if (!k.ok()) return k.status();
  keys_[cluster] = *k;
  return *k;
}

}  // namespace headshift
