// The cost of restarting a control plane: which devices of *other* tenants are online on it now
// (a restart drops every control connection it holds, so those reconnect — collateral), and waiting
// until they are back. Read from the control plane's own view, `GET /api/v1/node` (fields `online`
// and `user.name`), through controlplane/HeadscaleClient.
//
// Thread-safety: functions; the HeadscaleClient passed in is used from the calling thread only.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "common/status.h"
#include "controlplane/headscale_client.h"

namespace headshift {

struct OnlineDevices {
  std::map<std::string, std::string> by_id;  // node id -> "tenant/given_name"
  std::map<std::string, int64_t> tenants;    // tenant -> devices online
  int64_t count() const { return static_cast<int64_t>(by_id.size()); }
  // Drops the devices of tenants not in `keep`.
  void KeepTenants(const std::set<std::string>& keep);
};

// The devices online on `api` now whose user is not `tenant`. Fails (never an empty answer) when
// the API cannot be read: a caller must then report the count as unknown.
StatusOr<OnlineDevices> OtherTenantsOnline(HeadscaleClient& api, const std::string& tenant);

struct Reconnection {
  int64_t reconnected = 0;              // devices of `before` online again
  std::vector<std::string> stragglers;  // "tenant/given_name" not back by the deadline
  double ms = 0;                        // from `since` until the last one was back (or the deadline)
};

// How long to wait for `devices` devices to reconnect to one control plane: at least `reconnect_ms`
// (timeouts.reconnect_ms), and kReconnectPerDeviceMs per device. Measured on real headscale v0.29.3 (2 shared
// cores, bench/real_peers/scale.py): a target holding 1,010 devices restarted, then 502 moved in: the
// restarted ones were back after p50 85 s / max 242 s, the moved ones after p50 172 s (~6 devices a second);
// a fixed 60 s wait reported all 502 as stragglers that were merely queued. The wait ends as soon as every
// device is back, so the allowance only costs time when a device never returns.
inline constexpr int64_t kReconnectPerDeviceMs = 200;
std::chrono::milliseconds ReconnectWait(int64_t reconnect_ms, size_t devices);

// The pause between two listings of `devices` nodes while waiting for them: each listing makes
// headscale serialize every node, which steals CPU from the reconnects being waited for, so the pause
// grows with the list (`floor` up to 100, then 1 ms per 5 devices, at most 2 s).
std::chrono::milliseconds ListPollInterval(size_t devices, std::chrono::milliseconds floor);

// Polls `api` until every device of `before` is online again or `timeout` has passed. Call it once
// the restarted control plane answers again (a device it lists as online is then back for real).
Reconnection WaitBackOnline(HeadscaleClient& api, const OnlineDevices& before, std::chrono::milliseconds timeout,
                            std::chrono::steady_clock::time_point since);

}  // namespace headshift
