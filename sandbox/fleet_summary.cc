#include "sandbox/fleet_summary.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <thread>

#include "common/atomic_file.h"
#include "sandbox/event_loop.h"

namespace headshift::sandbox {

nlohmann::json ShardStatsToJson(const TenantFleetStats& s) {
  return {{"clients", s.clients},
          {"connected", s.connected},
          {"connected_by_cluster", s.connected_by_cluster},
          {"disconnected_clients", s.disconnected_clients},
          {"disconnects", s.disconnects},
          {"reconnects", s.reconnects},
          {"rejections", s.rejections},
          {"rejected_clients", s.rejected_clients},
          {"errors", s.errors},
          {"ongoing", s.ongoing},
          {"ongoing_max_ms", s.ongoing_max_ms},
          {"interruptions_ms", s.interruptions_ms},
          {"problems", s.problems}};
}

TenantFleetStats ShardStatsFromJson(const nlohmann::json& j) {
  TenantFleetStats s;
  auto get = [&j](const char* k) -> int64_t { return j.contains(k) && j[k].is_number() ? j[k].get<int64_t>() : 0; };
  s.clients = get("clients");
  s.connected = get("connected");
  if (j.contains("connected_by_cluster") && j["connected_by_cluster"].is_object()) {
    for (auto& [k, v] : j["connected_by_cluster"].items()) s.connected_by_cluster[k] = v.get<int64_t>();
  }
  s.disconnected_clients = get("disconnected_clients");
  s.disconnects = get("disconnects");
  s.reconnects = get("reconnects");
  s.rejections = get("rejections");
  s.rejected_clients = get("rejected_clients");
  s.errors = get("errors");
  s.ongoing = get("ongoing");
  s.ongoing_max_ms = get("ongoing_max_ms");
  if (j.contains("interruptions_ms") && j["interruptions_ms"].is_array()) {
    s.interruptions_ms = j["interruptions_ms"].get<std::vector<int64_t>>();
  }
  if (j.contains("problems") && j["problems"].is_array()) s.problems = j["problems"];
  return s;
}

void MergeStats(TenantFleetStats& into, const TenantFleetStats& from) {
  into.clients += from.clients;
  into.connected += from.connected;
  for (const auto& [k, v] : from.connected_by_cluster) into.connected_by_cluster[k] += v;
  into.disconnected_clients += from.disconnected_clients;
  into.disconnects += from.disconnects;
  into.reconnects += from.reconnects;
  into.rejections += from.rejections;
  into.rejected_clients += from.rejected_clients;
  into.errors += from.errors;
  into.ongoing += from.ongoing;
  into.ongoing_max_ms = std::max(into.ongoing_max_ms, from.ongoing_max_ms);
  into.interruptions_ms.insert(into.interruptions_ms.end(), from.interruptions_ms.begin(), from.interruptions_ms.end());
  for (const auto& p : from.problems) {
    if (into.problems.size() < 20) into.problems.push_back(p);
  }
}

bool FleetSummary::AllConnected() const {
  if (shards_missing > 0 || tenants.empty()) return false;
  for (const auto& [t, s] : tenants) {
    if (s.connected != s.clients) return false;
  }
  return true;
}

int64_t FleetSummary::Clients() const {
  int64_t n = 0;
  for (const auto& [t, s] : tenants) n += s.clients;
  return n;
}

int64_t FleetSummary::Connected() const {
  int64_t n = 0;
  for (const auto& [t, s] : tenants) n += s.connected;
  return n;
}

int64_t Percentile(std::vector<int64_t> samples, double q) {
  if (samples.empty()) return 0;
  std::sort(samples.begin(), samples.end());
  size_t rank = static_cast<size_t>(std::ceil(q * static_cast<double>(samples.size())));
  if (rank < 1) rank = 1;
  return samples[std::min(rank, samples.size()) - 1];
}

FleetSummary ReadFleetSummary(const std::string& dir, int shards, int64_t not_before_ms, int64_t wait_ms) {
  int64_t deadline = MonoMs() + wait_ms;
  std::vector<nlohmann::json> files(static_cast<size_t>(shards));
  for (;;) {
    bool all_fresh = true;
    for (int i = 0; i < shards; ++i) {
      auto& f = files[static_cast<size_t>(i)];
      if (!f.is_null() && f.value("written_ms", int64_t{0}) >= not_before_ms) continue;
      auto text = ReadFile(dir + "/shard-" + std::to_string(i) + ".json");
      if (text.ok()) {
        auto j = nlohmann::json::parse(*text, nullptr, false);
        if (!j.is_discarded() && j.is_object()) f = std::move(j);
      }
      if (f.is_null() || f.value("written_ms", int64_t{0}) < not_before_ms) all_fresh = false;
    }
    if (all_fresh || MonoMs() >= deadline) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  FleetSummary out;
  out.shards = shards;
  for (const auto& f : files) {
    if (f.is_null()) {
      ++out.shards_missing;
      continue;
    }
    int64_t w = f.value("written_ms", int64_t{0});
    if (out.oldest_written_ms == 0 || w < out.oldest_written_ms) out.oldest_written_ms = w;
    out.epochs.push_back(f.value("epoch", int64_t{0}));
    if (f.contains("tenants") && f["tenants"].is_object()) {
      for (auto& [name, tj] : f["tenants"].items()) MergeStats(out.tenants[name], ShardStatsFromJson(tj));
    }
  }
  return out;
}

nlohmann::json FleetSummaryToJson(const FleetSummary& s) {
  nlohmann::json tenants = nlohmann::json::object();
  for (const auto& [name, t] : s.tenants) {
    int64_t max = 0;
    for (int64_t v : t.interruptions_ms) max = std::max(max, v);
    tenants[name] = {{"clients", t.clients},
                     {"connected", t.connected},
                     {"not_connected", t.clients - t.connected},
                     {"connected_by_cluster", t.connected_by_cluster},
                     {"disconnected_clients", t.disconnected_clients},
                     {"disconnects", t.disconnects},
                     {"reconnects", t.reconnects},
                     {"rejections", t.rejections},
                     {"rejected_clients", t.rejected_clients},
                     {"errors", t.errors},
                     {"interruption_ms",
                      {{"count", t.interruptions_ms.size()},
                       {"p50", Percentile(t.interruptions_ms, 0.50)},
                       {"p99", Percentile(t.interruptions_ms, 0.99)},
                       {"max", max},
                       {"ongoing", t.ongoing},
                       {"ongoing_max", t.ongoing_max_ms}}},
                     {"problems", t.problems}};
  }
  return {{"tenants", tenants},
          {"clients", s.Clients()},
          {"connected", s.Connected()},
          {"all_connected", s.AllConnected()},
          {"shards", s.shards},
          {"shards_missing", s.shards_missing},
          {"written_ms", s.oldest_written_ms}};
}

}  // namespace headshift::sandbox
