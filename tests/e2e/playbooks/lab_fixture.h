// LabFixture: brings a sandbox lab up for an e2e test and always takes it down; runs headshift
// against the lab's config and reads the fleet's per-tenant summary.
#pragma once

#include <functional>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <yaml-cpp/yaml.h>

#include "sandbox/lab.h"
#include "tests/fixtures/cli_runner.h"

namespace headshift::testing {

class LabFixture {
 public:
  // Brings the lab up (fails the test on error). The lab name is made unique per process.
  explicit LabFixture(sandbox::LabOptions options);
  ~LabFixture();
  bool up() const { return up_; }
  const std::string& config_path() const { return info_.config_path; }
  const std::string& state_dir() const { return info_.state_dir; }

  // headshift --json --config <lab> args... ; parses stdout (one JSON object).
  struct Result {
    int exit_code = -1;
    nlohmann::json json;
    std::string err;
  };
  Result Headshift(const std::vector<std::string>& args, const std::map<std::string, std::string>& env = {});

  // The fleet summary; with tenant/on_cluster waits until all of that tenant's clients are
  // connected there (returns false on timeout).
  nlohmann::json LabState();
  bool WaitTenantOn(const std::string& tenant, const std::string& cluster, int64_t timeout_ms = 30000);
  bool WaitAllConnected(int64_t timeout_ms = 30000);
  void ResetStats();
  nlohmann::json Tenant(const std::string& name) { return LabState()["tenants"][name]; }

  // A checksum of the tenant's rows (users, pre_auth_keys, nodes; every column) in every
  // database of the lab, as "<db>:<md5>" joined; stable columns only when `stable_only`
  // (skips last_seen, updated_at, endpoints, host_info, which control planes write on their own).
  std::string TenantChecksum(const std::string& tenant, bool stable_only = false);
  // Runs `sql` on the database that holds cluster `cluster`'s rows (the shared one, or the
  // cluster's own in the split layout). Returns "" on success, else the error.
  std::string ExecOn(const std::string& cluster, const std::string& sql);
  // Like ExecOn, but returns the first column of every row, joined by newlines ("error: ..." on error).
  std::string QueryOn(const std::string& cluster, const std::string& sql);
  // The cluster the proxy routes the tenant to (route show).
  std::string RouteOf(const std::string& tenant);
  // Rewrites the lab's config with `edit` applied to cluster `id`'s entry (clusters[].id == id).
  // Returns false (config unchanged) when there is no such cluster.
  bool EditCluster(const std::string& id, const std::function<void(YAML::Node&)>& edit);

 private:
  sandbox::LabInfo info_;
  std::string name_;
  bool up_ = false;
};

}  // namespace headshift::testing
