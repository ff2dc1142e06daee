// TargetBackCounter: how many of a tenant's devices are back on the target control plane since a reset
// began — the observation WavePacer is fed (playbooks/paced_reset.h). Reads the target's own view
// (controlplane/ConnectedNodesReader: /debug/batcher, else the API's `online`). Devices already
// connected on the target when Start() read it are not expected back (they redialled through the new
// route before the reset), so they are not counted.
//
// Thread-safety: one thread (it owns the reader's HTTP clients).
#pragma once

#include <cstdint>
#include <memory>
#include <set>
#include <string>

#include "common/config.h"
#include "common/status.h"
#include "controlplane/connected_nodes.h"

namespace headshift {

// What a paced reset observes. An interface so the fleet path and the migration step share the driver.
class BackCounter {
 public:
  virtual ~BackCounter() = default;
  // Devices back since the reset began (cumulative, never decreasing).
  virtual StatusOr<int64_t> Back() = 0;
  // Devices expected back in all.
  virtual int64_t devices() const = 0;
  // "batcher" or "api": the source of the last read.
  virtual std::string signal() const = 0;
};

class TargetBackCounter : public BackCounter {
 public:
  // `cluster` is the target's config entry; `api_key` its key ("" when only its debug_url is read).
  TargetBackCounter(const ClusterConfig& cluster, std::string api_key, int64_t timeout_ms);

  // Watches `node_ids` (the tenant's nodes on the target; `user` = the tenant, for the API's filter) and
  // reads the baseline. Failed when the target's view cannot be read at all.
  Status Start(std::set<std::string> node_ids, std::string user);

  StatusOr<int64_t> Back() override;
  int64_t devices() const override { return static_cast<int64_t>(ids_.size() - baseline_.size()); }
  std::string signal() const override { return reader_.source(); }
  // Why the batcher is not the source (empty while it is).
  const std::string& batcher_unused() const { return reader_.batcher_unused(); }

 private:
  ConnectedNodesReader reader_;
  std::set<std::string> ids_;
  std::string user_;
  std::set<std::string> baseline_;
  std::set<std::string> back_;  // ever seen connected after the baseline: Back() never decreases
};

// The fleet path (a proxy host's `sessions kill --pace-cluster`, which has no database): the tenant's
// nodes as `cluster`'s API lists them (?user=tenant; its API key from the config), watched and started.
// Tagged devices (no user) are not among them. Failed when the API cannot be read.
StatusOr<std::unique_ptr<TargetBackCounter>> WatchTenantByApi(const ClusterConfig& cluster, const std::string& tenant,
                                                              int64_t timeout_ms);

}  // namespace headshift
