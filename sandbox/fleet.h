// Fleet: one shard of the sandbox's client fleet — simulated tailscale clients that hold a control
// stream each through the proxy (sandbox/wire.h framing) and behave like tailscaled after a reset:
// redial with tailscale's backoff min(n²·10 ms, 30 s) × U(0.5, 1.5), n = consecutive failures, reset
// by a successful map response (research/headscale.md §4). Every client binds its own source address
// (the tenant's public/NAT address) and sends its tenant's Host header.
//
// Per client it records every disconnect and reconnect (wall-clock ms), which cluster served it (from
// the OK line and every keep-alive), every rejection ("ERR 404 node not found": the device would need
// to log in again) and other failures. Every `summary_ms` it writes a per-tenant summary of its shard
// (FleetShardSummary JSON, see sandbox/fleet_summary.h) and once a second, if anything changed, the
// per-client records. SIGUSR1 zeroes the counters (a new "epoch"); SIGINT/SIGTERM stop it.
//
// One epoll thread per shard; a shard holds at most ~19,000 clients (20,000 fds per process here).
//
// Layout: fleet_spec (the clients file), fleet.cc (each client's connection state machine),
// fleet_report.cc (the summary and per-client files, SIGUSR1 resets), over fleet_impl.h.
//
// Thread-safety: Start()/Run() from one thread.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/status.h"
#include "sandbox/fleet_spec.h"

namespace headshift::sandbox {

struct FleetOptions {
  std::vector<FleetClientSpec> clients;  // this shard's clients
  int shard = 0;
  std::string summary_file;   // per-tenant summary, rewritten every summary_ms (atomic rename)
  std::string clients_file;   // per-client records, rewritten once a second when changed
  int64_t summary_ms = 200;
  int64_t ramp_ms = -1;       // initial connects spread over this many ms (-1: clients/2, max 2000)
  int64_t connect_timeout_ms = 5000;
  int64_t poll_timeout_ms = 120000;  // tailscale aborts a map poll after 120 s without a message
  int64_t max_backoff_ms = 30000;
};

class Fleet {
 public:
  explicit Fleet(FleetOptions options);
  ~Fleet();
  Fleet(const Fleet&) = delete;
  Fleet& operator=(const Fleet&) = delete;

  // Blocks SIGINT/SIGTERM/SIGUSR1 (read through a signalfd), raises RLIMIT_NOFILE to the hard limit.
  Status Start();
  // Runs until SIGINT/SIGTERM; writes a final summary.
  void Run();

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace headshift::sandbox
