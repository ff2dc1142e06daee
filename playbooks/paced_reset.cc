#include "playbooks/paced_reset.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <thread>

#include <spdlog/spdlog.h>

#include "dataplane/host_fanout.h"
#include "playbooks/target_restart.h"
#include "playbooks/wave_pacer.h"

namespace headshift {

namespace {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

// Every host's whole snapshot at once (unpaced) or at the fixed rate per host.
StatusOr<std::vector<TerminationReport>> KillAll(const std::vector<SessionHost>& hosts,
                                                 const std::vector<SessionSnapshot>& snaps, int64_t rate,
                                                 int max_rounds) {
  TerminatorOptions t;
  t.max_rounds = max_rounds;
  t.resets_per_second = rate;
  auto results = OnEachHost<StatusOr<TerminationReport>>(
      hosts.size(), [&](size_t i) { return KillSnapshot(hosts[i], snaps[i], t); });
  std::vector<TerminationReport> out;
  for (size_t i = 0; i < results.size(); ++i) {
    if (!results[i].ok()) return results[i].status().WithContext("session host " + hosts[i].name);
    out.push_back(std::move(results[i]).value());
  }
  return out;
}

double Round1(double v) { return std::round(v * 10.0) / 10.0; }

class AdaptiveRun {
 public:
  AdaptiveRun(const std::vector<SessionHost>& hosts, const std::vector<SessionSnapshot>& snaps, BackCounter& back,
              const PacedResetOptions& o)
      : hosts_(hosts), snaps_(snaps), back_(back), o_(o), offset_(hosts.size(), 0) {}

  Status Run(PacedResetResult& res, json& pacing) {
    int64_t local = 0;
    for (const auto& s : snaps_) local += static_cast<int64_t>(s.sockets.size());
    int64_t global = o_.fleet_sockets > 0 ? std::max(o_.fleet_sockets, local) : local;
    double scale = local > 0 ? static_cast<double>(global) / static_cast<double>(local) : 1.0;
    WavePacer pacer(global, back_.devices(), o_.cap_per_s, o_.waves);
    t0_ = Clock::now();
    int64_t back_now = 0, back_last_change = 0;
    double first_start = -1, last_change_ms = 0;
    for (int wave = 1; LocalRemaining() > 0; ++wave) {
      int64_t planned = pacer.NextWave();
      int64_t budget = planned > 0 ? std::max<int64_t>(1, static_cast<int64_t>(std::ceil(planned / scale)))
                                   : LocalRemaining();  // rounding left the pacer short: the rest
      std::vector<int64_t> rem(hosts_.size());
      for (size_t i = 0; i < hosts_.size(); ++i) rem[i] = static_cast<int64_t>(snaps_[i].sockets.size() - offset_[i]);
      std::vector<int64_t> shares = SplitWave(budget, rem);
      double start = Ms();
      if (first_start < 0) first_start = start;
      TerminationReport w;
      HS_RETURN_IF_ERROR(KillShares(shares, budget, res, w));
      int64_t handed = 0;
      for (auto s : shares) handed += s;
      int64_t handed_global = LocalRemaining() == 0 ? pacer.remaining()
                                                    : std::llround(static_cast<double>(handed) * scale);
      pacer.Sent(handed_global, std::llround(static_cast<double>(w.reset) * scale), back_now, Ms());
      WavePacer::Verdict v = WavePacer::Verdict::kWait;
      bool judged = !pacer.given_up() || wave == 1;
      while (judged && v == WavePacer::Verdict::kWait) {
        std::this_thread::sleep_for(PollInterval());
        double at = Ms();
        auto b = back_.Back();
        if (b.ok()) {
          if (*b > back_last_change) {
            back_last_change = *b;
            last_change_ms = Ms();
          }
          back_now = *b;
        } else if (!read_failed_) {
          read_failed_ = true;
          spdlog::warn("reset: reading the target's view failed ({}); waves wait out their timeout while it does",
                       b.status().ToString());
        }
        v = pacer.Observe(back_now, at);
      }
      double ms = Ms() - start;
      int64_t wb = pacer.wave_back();
      const char* verdict = judged ? WavePacer::VerdictName(v) : "unjudged";
      pacing["waves"].push_back({{"wave", wave}, {"size", handed}, {"sent", w.reset}, {"gone", w.gone},
                                 {"back", wb}, {"ms", Round1(ms)},
                                 {"absorb_per_s", ms > 0 ? Round1(static_cast<double>(wb) * 1000.0 / ms) : 0.0},
                                 {"judged", verdict}});
      std::string line = "reset wave " + std::to_string(wave) + ": " + std::to_string(handed) + " socket(s) (" +
                         std::to_string(w.reset) + " reset, " + std::to_string(w.gone) + " gone), " +
                         std::to_string(wb) + " device(s) back in " + std::to_string(std::llround(ms)) + " ms: " +
                         verdict + (LocalRemaining() > 0 ? ", next " + std::to_string(pacer.NextWave()) : "");
      if (o_.progress) o_.progress(line);
      else spdlog::info("{}", line);
    }
    if (pacer.given_up()) {
      pacing["fallback"] = "the target showed no device back during " + std::to_string(WavePacer::kMaxTimeouts) +
                           " waves in a row (each waited sessions.waves.timeout_ms); the rest went in one wave";
    }
    pacing["signal"] = back_.signal().empty() ? json(nullptr) : json(back_.signal());
    double span = last_change_ms - first_start;
    pacing["absorb_per_s"] = back_last_change > 0 && span > 0
                                 ? json(Round1(static_cast<double>(back_last_change) * 1000.0 / span))
                                 : json(back_.devices() > 0 ? json(0.0) : json(nullptr));
    return Status::Ok();
  }

 private:
  double Ms() const { return std::chrono::duration<double, std::milli>(Clock::now() - t0_).count(); }
  int64_t LocalRemaining() const {
    int64_t r = 0;
    for (size_t i = 0; i < snaps_.size(); ++i) r += static_cast<int64_t>(snaps_[i].sockets.size() - offset_[i]);
    return r;
  }
  // Each read lists the tenant's devices on the target: polling harder would steal CPU from the very
  // reconnects being waited for, but a wave must still be judged well within its window.
  std::chrono::milliseconds PollInterval() const {
    auto floor = std::chrono::milliseconds(back_.signal() == "batcher" ? 25 : 50);
    auto ms = ListPollInterval(static_cast<size_t>(back_.devices()), floor).count();
    return std::chrono::milliseconds(std::clamp<int64_t>(ms, 10, std::max<int64_t>(10, o_.waves.window_ms / 4)));
  }

  // One wave: each host's share as a sub-snapshot, all hosts at once, each spread at its share of the cap.
  Status KillShares(const std::vector<int64_t>& shares, int64_t budget, PacedResetResult& res, TerminationReport& w) {
    std::vector<SessionSnapshot> subs(hosts_.size());
    for (size_t i = 0; i < hosts_.size(); ++i) {
      subs[i] = snaps_[i];
      auto first = snaps_[i].sockets.begin() + static_cast<std::ptrdiff_t>(offset_[i]);
      subs[i].sockets.assign(first, first + static_cast<std::ptrdiff_t>(shares[i]));
    }
    auto results = OnEachHost<StatusOr<TerminationReport>>(hosts_.size(), [&](size_t i) -> StatusOr<TerminationReport> {
      if (shares[i] == 0) return TerminationReport{};
      TerminatorOptions t;
      t.max_rounds = o_.max_rounds;
      if (o_.cap_per_s > 0) t.resets_per_second = std::max<int64_t>(1, o_.cap_per_s * shares[i] / std::max<int64_t>(1, budget));
      return KillSnapshot(hosts_[i], subs[i], t);
    });
    for (size_t i = 0; i < hosts_.size(); ++i) {
      if (!results[i].ok()) return results[i].status().WithContext("session host " + hosts_[i].name);
      offset_[i] += static_cast<size_t>(shares[i]);
      if (shares[i] == 0) continue;
      w.Merge(*results[i]);
      res.reports[i].Merge(*results[i]);
      res.reports[i].rounds = std::max(res.reports[i].rounds, results[i]->rounds);
    }
    return Status::Ok();
  }

  const std::vector<SessionHost>& hosts_;
  const std::vector<SessionSnapshot>& snaps_;
  BackCounter& back_;
  const PacedResetOptions& o_;
  std::vector<size_t> offset_;
  Clock::time_point t0_;
  bool read_failed_ = false;
};

}  // namespace

StatusOr<PacedResetResult> RunPacedReset(const std::vector<SessionHost>& hosts,
                                         const std::vector<SessionSnapshot>& snapshots, BackCounter* back,
                                         const PacedResetOptions& o) {
  PacedResetResult res;
  json pacing = {{"mode", nullptr}, {"signal", nullptr}, {"cap_per_s", o.cap_per_s}, {"devices", nullptr},
                 {"absorb_per_s", nullptr}, {"waves", json::array()}, {"fallback", nullptr}};
  bool adaptive = o.pacing == ResetPacing::kAdaptive && o.cap_per_s > 0;
  if (adaptive && (back == nullptr || !o.fallback.empty())) {
    adaptive = false;
    pacing["fallback"] = o.fallback.empty() ? "no view of the target to pace by" : o.fallback;
    spdlog::warn("reset: adaptive pacing not possible ({}); fixed pacing at {}/s per host",
                 pacing["fallback"].get<std::string>(), o.cap_per_s);
  }
  if (!adaptive) {
    pacing["mode"] = o.cap_per_s == 0 ? "unpaced" : "fixed";
    auto reports = KillAll(hosts, snapshots, o.cap_per_s, o.max_rounds);
    if (!reports.ok()) return reports.status();
    res.reports = std::move(reports).value();
    res.pacing = std::move(pacing);
    return res;
  }
  pacing["mode"] = "adaptive";
  pacing["devices"] = back->devices();
  res.reports.resize(hosts.size());
  for (size_t i = 0; i < hosts.size(); ++i) {
    res.reports[i].host = hosts[i].name;
    res.reports[i].netns = hosts[i].netns;
  }
  AdaptiveRun run(hosts, snapshots, *back, o);
  HS_RETURN_IF_ERROR(run.Run(res, pacing));
  res.pacing = std::move(pacing);
  return res;
}

}  // namespace headshift
