// FakeTraefikApi — a TEST STAND-IN for Traefik's read-only API (Traefik itself cannot be installed
// here). It serves `GET /api/{http,tcp}/{routers,services}/<name>@file` in the shape of Traefik's
// runtime API (recorded responses: traefik/traefik pkg/api/testdata/router-bar.json and
// service-bar.json; research/traefik.md §3) and derives them from the files of a provider
// directory the way the file provider does: .yml/.yaml files depth-first in name order, the first
// definition of a name wins, a file that does not parse freezes the last good state. A change of
// the directory becomes visible only `delay_ms` after it is seen (emulating the file watcher plus
// providersThrottleDuration). Router errors follow Traefik: a missing service or middleware makes
// the router `disabled` with an `error` array. Optional bearer-token auth answers 401.
#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>

#include <httplib.h>
#include <nlohmann/json.hpp>

namespace headshift::testing {

class FakeTraefikApi {
 public:
  FakeTraefikApi(std::string dir, int delay_ms);
  ~FakeTraefikApi();
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  int port() const { return port_; }

  void RequireBearer(const std::string& token);
  void SetServerDown(const std::string& server_url);  // reported as DOWN in serverStatus
  void SetDelay(int delay_ms);
  // Blocks until the directory's current content is what the API serves.
  bool WaitApplied(int timeout_ms);
  int requests() const { return requests_; }

 private:
  void Poll();
  void Apply(const std::map<std::string, std::string>& files);
  std::map<std::string, std::string> ReadDir() const;

  std::string dir_;
  httplib::Server server_;
  std::thread server_thread_;
  std::thread poll_thread_;
  std::atomic<bool> stop_{false};
  std::atomic<int> requests_{0};
  int port_ = 0;

  std::mutex mu_;
  int delay_ms_;
  std::string token_;
  std::set<std::string> down_;
  std::map<std::string, std::string> seen_;     // last directory content observed
  std::map<std::string, std::string> applied_;  // directory content the API reflects
  std::map<std::string, nlohmann::json> objects_;  // "/api/http/routers/x@file" -> JSON
};

}  // namespace headshift::testing
