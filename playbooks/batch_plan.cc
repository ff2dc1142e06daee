#include "playbooks/batch_plan.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <set>

#include "playbooks/batch_restart.h"
#include "playbooks/journal_details.h"

namespace headshift {

using json = nlohmann::json;

namespace {

std::string Fmt(double v) {
  char buf[32];
  snprintf(buf, sizeof buf, "%.1f", v);
  return buf;
}

// reconnected / reconnect_ms of a restart report that dropped devices, or nullopt.
std::optional<double> RestartRate(const json& tr) {
  if (!tr.is_object() || !tr.value("restarted", false)) return std::nullopt;
  int64_t back = tr.value("reconnected", int64_t{0});
  double ms = tr.value("reconnect_ms", 0.0);
  if (back <= 0 || ms <= 0) return std::nullopt;
  return back / (ms / 1000.0);
}

}  // namespace

AbsorbRate MeasuredAbsorbRate(const std::vector<migrate::MigrationRecord>& newest_first, const std::string& cluster) {
  // A restart's own measurement first: the plan predicts a restart, where every device the target holds
  // redials at once, and headscale's cost per device grows with how many reconnect together; a paced
  // reset's waves (smaller by design) would promise too short a downtime. The paced rate is the fallback.
  for (const auto& m : newest_first) {
    if (m.to != cluster) continue;
    if (auto r = RestartRate(m.details.value("batch_restart", json()))) {
      return {*r, "batch_restart of cluster " + cluster + " recorded with migration " + m.id + ": reconnected / reconnect_ms"};
    }
    if (auto r = RestartRate(StepDetails(m, "target_ready").value("target_restart", json()))) {
      return {*r, "target_ready target_restart of migration " + m.id + " (" + m.tenant + " -> " + cluster +
                      "): reconnected / reconnect_ms"};
    }
  }
  for (const auto& m : newest_first) {
    if (m.to != cluster || !StepDone(m, "reset_sessions")) continue;
    json pacing = StepDetails(m, "reset_sessions").value("pacing", json());
    if (!pacing.is_object() || !pacing.contains("absorb_per_s") || !pacing["absorb_per_s"].is_number()) continue;
    double rate = pacing["absorb_per_s"].get<double>();
    if (!(rate > 0) || !std::isfinite(rate)) continue;
    return {rate, "reset_sessions pacing.absorb_per_s of migration " + m.id + " (" + m.tenant + " -> " + cluster + ", " +
                      m.started_at + "; a paced reset, not a restart: a lower bound of the downtime)"};
  }
  return {std::nullopt, "no absorb rate measured onto cluster " + cluster +
                            " yet (no journaled reset_sessions pacing or restart with reconnected devices)"};
}

std::vector<std::pair<std::string, std::vector<PlannedMove>>> GroupByTarget(const std::vector<PlannedMove>& moves) {
  std::vector<std::pair<std::string, std::vector<PlannedMove>>> out;
  for (const auto& m : moves) {
    auto it = std::find_if(out.begin(), out.end(), [&](const auto& g) { return g.first == m.to; });
    if (it == out.end()) {
      out.push_back({m.to, {m}});
    } else {
      it->second.push_back(m);
    }
  }
  return out;
}

int ExpectedRestarts(const ClusterConfig& target) {
  return !target.reload_command.empty() && target.reload_drops_sessions && target.cached_nodes ? 1 : 0;
}

json TargetRestartPlan(MigrationEnv& env, const std::vector<PlannedMove>& moves, std::map<std::string, int>& restarts) {
  json out = json::object();
  std::vector<migrate::MigrationRecord> journal;
  std::string journal_error;
  if (auto all = env.mover->journal().List(); all.ok()) {
    journal = std::move(*all);
  } else {
    journal_error = all.status().message();
  }
  std::set<std::string> moving;
  for (const auto& m : moves) moving.insert(m.tenant);
  for (const auto& [to, group] : GroupByTarget(moves)) {
    const ClusterConfig* target = env.config.FindCluster(to);
    if (!target) continue;
    json tenants = json::array();
    for (const auto& m : group) tenants.push_back(m.tenant);
    int n = ExpectedRestarts(*target);
    restarts[to] = n;
    json t{{"tenants", tenants}, {"restarts", n}};
    if (n == 0) {
      t["devices_dropped"] = 0;
      t["expected_control_downtime_s"] = 0;
      t["why"] = target->reload_command.empty() || !target->reload_drops_sessions
                     ? "its reload keeps connections (reload_drops_sessions: false, or no reload_command)"
                     : "it reads nodes per request (cached_nodes: false): the copied rows are served without a reload";
      t["message"] = "cluster " + to + ": no restart for " + std::to_string(group.size()) + " tenant(s): " +
                     t["why"].get<std::string>();
      out[to] = t;
      continue;
    }
    TargetRestartReport tr;
    tr.cluster = to;
    CountTargetOwnDevices(env, to, moving, tr);
    AbsorbRate rate = journal_error.empty() ? MeasuredAbsorbRate(journal, to)
                                            : AbsorbRate{std::nullopt, "journal unreadable: " + journal_error};
    t["devices_dropped"] = tr.devices ? json(*tr.devices) : json();
    t["devices_by_tenant"] = tr.devices ? json(tr.tenants) : json();
    t["absorb_per_s"] = rate.per_s ? json(std::round(*rate.per_s * 10) / 10) : json();
    t["absorb_source"] = rate.source;
    if (tr.devices && *tr.devices == 0) {
      t["expected_control_downtime_s"] = 0;
    } else if (tr.devices && rate.per_s) {
      t["expected_control_downtime_s"] = std::round(*tr.devices / *rate.per_s * 10) / 10;
    } else {
      t["expected_control_downtime_s"] = json();
      t["unknown_reason"] = !tr.devices ? "devices online on cluster " + to + " unknown: " + tr.unknown_reason
                                        : rate.source;
    }
    t["message"] = "cluster " + to + ": 1 restart for " + std::to_string(group.size()) + " tenant(s); " +
                   (tr.devices ? std::to_string(*tr.devices) : std::string("an unknown number of")) +
                   " of its own devices reconnect; expected without control: " +
                   (t["expected_control_downtime_s"].is_null()
                        ? "unknown, " + t.value("unknown_reason", "")
                        : Fmt(t["expected_control_downtime_s"].get<double>()) + " s" +
                              (rate.per_s ? " at " + Fmt(*rate.per_s) + " devices/s (" + rate.source + ")" : ""));
    out[to] = t;
  }
  return out;
}

}  // namespace headshift
