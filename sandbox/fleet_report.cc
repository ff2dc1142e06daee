// What a fleet shard reports (see sandbox/fleet_impl.h): the per-tenant summary, the per-client
// records, and the counter reset.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>

#include <nlohmann/json.hpp>

#include "sandbox/fleet_impl.h"
#include "sandbox/fleet_summary.h"

namespace headshift::sandbox {

const char* Fleet::Impl::StateName(St s) {
  switch (s) {
    case St::kIdle: return "waiting";
    case St::kConnecting: return "connecting";
    case St::kUpgrading: return "upgrading";
    case St::kMapping: return "mapping";
    case St::kConnected: return "connected";
  }
  return "?";
}

void Fleet::Impl::ResetStats() {
  ++epoch_;
  for (auto& c : clients_) {
    c.disconnects = c.reconnects = c.rejections = c.errors = 0;
    c.events.clear();
    c.rejected_at.clear();
    c.last_error.clear();
  }
  interruptions_.clear();
  dirty_ = true;
  WriteSummary();
}

void Fleet::Impl::WriteSummary() {
  std::map<std::string, TenantFleetStats> t;
  int64_t now = MonoMs();
  for (const auto& c : clients_) {
    TenantFleetStats& s = t[c.spec->tenant];
    ++s.clients;
    if (c.st == St::kConnected) {
      ++s.connected;
      ++s.connected_by_cluster[c.cluster];
    }
    if (c.disconnects > 0) ++s.disconnected_clients;
    s.disconnects += c.disconnects;
    s.reconnects += c.reconnects;
    s.rejections += c.rejections;
    if (c.rejections > 0) ++s.rejected_clients;
    s.errors += c.errors;
    if (c.interrupted_at >= 0) {
      ++s.ongoing;
      s.ongoing_max_ms = std::max(s.ongoing_max_ms, now - c.interrupted_at);
    }
    if ((c.st != St::kConnected || c.rejections > 0) && s.problems.size() < 20) {
      s.problems.push_back({{"name", c.spec->name},
                            {"state", StateName(c.st)},
                            {"rejections", c.rejections},
                            {"errors", c.errors},
                            {"last_error", c.last_error}});
    }
  }
  nlohmann::json tenants = nlohmann::json::object();
  for (auto& [name, s] : t) {
    auto it = interruptions_.find(name);
    if (it != interruptions_.end()) s.interruptions_ms = it->second;
    tenants[name] = ShardStatsToJson(s);
  }
  nlohmann::json j = {{"shard", opt_.shard},  {"pid", getpid()},  {"epoch", epoch_},
                      {"written_ms", WallMs()}, {"tenants", tenants}};
  if (!opt_.summary_file.empty()) {
    // Plain write + rename (no fsync: the file is rewritten 5 times a second and read by `status`).
    std::string tmp = opt_.summary_file + ".tmp";
    int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd >= 0) {
      std::string s = j.dump();
      bool ok = write(fd, s.data(), s.size()) == static_cast<ssize_t>(s.size());
      close(fd);
      if (ok) rename(tmp.c_str(), opt_.summary_file.c_str());
    }
  }
  if (!stopping_) loop_.After(opt_.summary_ms, [this] { WriteSummary(); });
}

void Fleet::Impl::WriteClients() {
  if (dirty_ && !opt_.clients_file.empty()) {
    dirty_ = false;
    nlohmann::json arr = nlohmann::json::array();
    for (const auto& c : clients_) {
      nlohmann::json ev = nlohmann::json::array();
      for (const auto& e : c.events) ev.push_back({e.disconnected_ms, e.reconnected_ms});
      arr.push_back({{"tenant", c.spec->tenant},
                     {"name", c.spec->name},
                     {"state", StateName(c.st)},
                     {"cluster", c.cluster},
                     {"disconnects", c.disconnects},
                     {"reconnects", c.reconnects},
                     {"rejections", c.rejections},
                     {"errors", c.errors},
                     {"last_error", c.last_error},
                     {"events", ev},
                     {"rejected_at", c.rejected_at}});
    }
    std::string tmp = opt_.clients_file + ".tmp";
    int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd >= 0) {
      std::string s = nlohmann::json{{"shard", opt_.shard}, {"epoch", epoch_}, {"written_ms", WallMs()}, {"clients", arr}}.dump();
      bool ok = write(fd, s.data(), s.size()) == static_cast<ssize_t>(s.size());
      close(fd);
      if (ok) rename(tmp.c_str(), opt_.clients_file.c_str());
    }
  }
  if (!stopping_) loop_.After(1000, [this] { WriteClients(); });
}

}  // namespace headshift::sandbox
