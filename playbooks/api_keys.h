// ApiKeys: the headscale API key of each cluster, resolved from its secret source
// (clusters[].api_key_env / api_key_file) on first use and kept for the migration's lifetime.
//
// Thread-safety: thread-safe (preflight's checks ask from several threads). The Config passed in
// must outlive the ApiKeys.
#pragma once

#include <map>
#include <mutex>
#include <string>

#include "common/config.h"
#include "common/status.h"

namespace headshift {

class ApiKeys {
 public:
  explicit ApiKeys(const Config& config) : config_(config) {}
  ApiKeys(const ApiKeys&) = delete;
  ApiKeys& operator=(const ApiKeys&) = delete;

  // The key of `cluster`. BadInput for an unknown cluster or one without a key source (the
  // control plane's node list proves the cluster serves the tenant, so the key is required).
  StatusOr<std::string> Get(const std::string& cluster);

 private:
  const Config& config_;
  std::mutex mu_;
  std::map<std::string, std::string> keys_;  // cluster -> key; guarded by mu_
};

}  // namespace headshift
