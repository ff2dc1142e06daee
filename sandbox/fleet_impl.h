// Fleet::Impl: the state of one fleet shard (sandbox/fleet.h), shared by its two halves:
//   fleet.cc         start, signals, and each client's connection state machine (connect, upgrade,
//                    map, keep-alives, failures, tailscale's redial backoff, timeouts);
//   fleet_report.cc  what the shard reports: the per-tenant summary, the per-client records, and the
//                    counter reset (SIGUSR1, a new epoch).
// Private to those two files.
//
// Thread-safety: everything runs on the shard's one event-loop thread.
#pragma once

#include <netinet/in.h>
#include <unistd.h>

#include <cstdint>
#include <deque>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "sandbox/event_loop.h"
#include "sandbox/fleet.h"

namespace headshift::sandbox {

class Fleet::Impl {
 public:
  explicit Impl(FleetOptions o) : opt_(std::move(o)), rng_(std::random_device{}()) {}
  ~Impl() {
    for (auto& c : clients_) {
      if (c.fd >= 0) close(c.fd);
    }
    if (sigfd_ >= 0) close(sigfd_);
  }
  Status Start();
  void Run();

 private:
  enum class St { kIdle, kConnecting, kUpgrading, kMapping, kConnected };
  struct Event {
    int64_t disconnected_ms;  // wall
    int64_t reconnected_ms;   // wall, 0 while ongoing
  };
  struct Client {
    const FleetClientSpec* spec = nullptr;
    sockaddr_in src{}, dst{};
    std::string request;  // HTTP upgrade request (constant)
    int fd = -1;
    St st = St::kIdle;
    std::string in;
    int backoff_n = 0;
    int64_t attempt_started = 0;  // mono
    int64_t last_rx = 0;          // mono
    std::string cluster;          // serving cluster while connected
    int64_t interrupted_at = -1;  // mono start of the current interruption, -1 if none
    bool ever_connected = false;
    // counters (reset by SIGUSR1)
    int64_t disconnects = 0, reconnects = 0, rejections = 0, errors = 0;
    std::deque<Event> events;
    std::deque<int64_t> rejected_at;
    std::string last_error;
  };

  void Attempt(size_t i);
  void OnEvent(size_t i, uint32_t ev);
  void OnData(size_t i);
  void HandleLine(size_t i, const std::string& line);
  void Fail(size_t i, const std::string& why, bool rejection);
  void Drop(Client& c);
  void ScheduleRetry(size_t i);
  void Sweep();
  void WriteSummary();
  void WriteClients();
  void ResetStats();
  void OnSignal();
  static const char* StateName(St s);

  FleetOptions opt_;
  EventLoop loop_;
  std::vector<Client> clients_;
  std::mt19937_64 rng_;
  int sigfd_ = -1;
  int64_t epoch_ = 0;
  std::map<std::string, std::vector<int64_t>> interruptions_;  // tenant -> finished interruption ms
  bool dirty_ = true;
  bool stopping_ = false;
};

}  // namespace headshift::sandbox
