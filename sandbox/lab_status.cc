// The lab's status and stats reset: read lab.json and the fleet's shard summaries.
#include <signal.h>

#include <chrono>
#include <thread>

#include "common/atomic_file.h"
#include "sandbox/event_loop.h"
#include "sandbox/fleet_summary.h"
#include "sandbox/lab.h"
#include "sandbox/process.h"

namespace headshift::sandbox {

LabStatusResult LabStatus(const std::string& state_dir, const LabQuery& q) {
  LabStatusResult res;
  auto text = ReadFile(state_dir + "/lab.json");
  if (!text.ok()) {
    res.status = Status::BadInput("no sandbox lab in " + state_dir + " (no lab.json)", "run `headshift sandbox up`");
    res.json = {{"up", false}, {"state_dir", state_dir}};
    return res;
  }
  nlohmann::json lab = nlohmann::json::parse(*text, nullptr, false);
  if (lab.is_discarded()) {
    res.status = Status::Failed(state_dir + "/lab.json is not JSON");
    return res;
  }
  int shards = lab.contains("fleet") ? lab["fleet"].value("shards", 0) : 0;
  int64_t deadline = MonoMs() + q.timeout_ms;
  bool waiting = q.wait_connected || !q.tenant.empty();
  for (;;) {
    int64_t now = WallMs();
    nlohmann::json procs = nlohmann::json::array();
    bool healthy = true;
    for (const auto& p : lab["processes"]) {
      bool alive = ProcessAlive(p.value("pid", -1), p.value("start_time", int64_t{-1}));
      healthy = healthy && alive;
      nlohmann::json pj = {{"role", p["role"]}, {"pid", p["pid"]}, {"alive", alive}};
      if (p.contains("cluster")) pj["cluster"] = p["cluster"];
      if (p.contains("shard")) pj["shard"] = p["shard"];
      procs.push_back(pj);
    }
    FleetSummary fs_sum = ReadFleetSummary(state_dir + "/fleet", shards, shards ? now : 0, shards ? 2000 : 0);
    nlohmann::json fleet = FleetSummaryToJson(fs_sum);
    nlohmann::json out = {{"up", true},
                          {"healthy", healthy},
                          {"name", lab["name"]},
                          {"state_dir", state_dir},
                          {"config", lab["config"]},
                          {"subnet", lab.value("subnet", "")},
                          {"netns", lab["netns"]},
                          {"edge", lab["edge"]},
                          {"lb", lab.contains("lb") ? lab["lb"] : nlohmann::json()},
                          {"clusters", lab["clusters"]},
                          {"seeded_tenants", lab["tenants"]},
                          {"processes", procs},
                          {"fleet", fleet},
                          {"tenants", fleet["tenants"]}};
    bool satisfied = true;
    if (q.wait_connected && !fs_sum.AllConnected()) satisfied = false;
    if (!q.tenant.empty()) {
      auto it = fs_sum.tenants.find(q.tenant);
      if (it == fs_sum.tenants.end()) {
        res.status = Status::BadInput("tenant '" + q.tenant + "' has no clients in this lab");
        res.json = out;
        return res;
      }
      auto c = it->second.connected_by_cluster.find(q.on_cluster);
      int64_t on = c == it->second.connected_by_cluster.end() ? 0 : c->second;
      if (on != it->second.clients) satisfied = false;
    }
    out["waited_for"] = waiting ? nlohmann::json(satisfied) : nlohmann::json();
    res.json = out;
    if (!waiting || satisfied) return res;
    if (!healthy) {
      res.status = Status::Failed("a lab process died (see processes[].alive and " + state_dir + "/logs)");
      return res;
    }
    if (MonoMs() > deadline) {
      std::string what = q.tenant.empty() ? "every client connected"
                                          : "all clients of " + q.tenant + " connected on cluster " + q.on_cluster;
      res.status = Status::Failed("timed out after " + std::to_string(q.timeout_ms) + " ms waiting for " + what);
      return res;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

Status LabResetStats(const std::string& state_dir) {
  auto text = ReadFile(state_dir + "/lab.json");
  if (!text.ok()) return Status::BadInput("no sandbox lab in " + state_dir);
  nlohmann::json lab = nlohmann::json::parse(*text, nullptr, false);
  if (lab.is_discarded()) return Status::Failed(state_dir + "/lab.json is not JSON");
  int shards = lab["fleet"].value("shards", 0);
  FleetSummary before = ReadFleetSummary(state_dir + "/fleet", shards, 0, 0);
  for (const auto& p : lab["processes"]) {
    if (p.value("role", "") != "fleet") continue;
    if (!ProcessAlive(p["pid"].get<pid_t>(), p.value("start_time", int64_t{-1}))) {
      return Status::Failed("fleet shard " + p["shard"].dump() + " is not running");
    }
    kill(p["pid"].get<pid_t>(), SIGUSR1);
  }
  int64_t deadline = MonoMs() + 5000;
  for (;;) {
    FleetSummary now = ReadFleetSummary(state_dir + "/fleet", shards, 0, 0);
    bool all = now.epochs.size() == before.epochs.size();
    for (size_t i = 0; all && i < now.epochs.size(); ++i) all = now.epochs[i] > before.epochs[i];
    if (all) return Status::Ok();
    if (MonoMs() > deadline) return Status::Failed("fleet shards did not confirm the reset within 5 s");
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

}  // namespace headshift::sandbox
