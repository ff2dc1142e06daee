#include "playbooks/wave_pacer.h"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace headshift {

const char* WavePacer::VerdictName(Verdict v) {
  switch (v) {
    case Verdict::kWait: return "wait";
    case Verdict::kAbsorbed: return "absorbed";
    case Verdict::kBehind: return "behind";
    case Verdict::kTimeout: return "timeout";
  }
  return "?";
}

WavePacer::WavePacer(int64_t sockets, int64_t devices, int64_t cap_per_s, const SessionWavesConfig& tuning)
    : sockets_(std::max<int64_t>(0, sockets)),
      devices_(std::max<int64_t>(0, devices)),
      cap_wave_(cap_per_s > 0 ? std::max<int64_t>(1, cap_per_s * tuning.window_ms / 1000) : 0),
      tuning_(tuning),
      size_(std::max<int64_t>(1, tuning.first)) {}

int64_t WavePacer::NextWave() const {
  int64_t n = given_up() ? remaining() : size_;
  if (cap_wave_ > 0) n = std::min(n, cap_wave_);
  return std::min(n, remaining());
}

void WavePacer::Sent(int64_t handed, int64_t reset, int64_t back, double now_ms) {
  handed_ += handed;
  reset_ += reset;
  wave_size_ = handed;
  back_at_start_ = back;
  last_back_ = back;
  back_in_window_ = 0;
  started_ms_ = now_ms;
}

int64_t WavePacer::target() const {
  double want = tuning_.back_fraction * static_cast<double>(std::min(reset_, devices_));
  return static_cast<int64_t>(std::ceil(want - 1e-9));
}

WavePacer::Verdict WavePacer::Observe(int64_t back, double now_ms) {
  last_back_ = std::max(last_back_, back);
  double elapsed = now_ms - started_ms_;
  bool in_window = elapsed <= static_cast<double>(tuning_.window_ms);
  if (in_window) back_in_window_ = last_back_ - back_at_start_;
  // What the target demonstrably takes back in one window: the count seen inside it, or the wave's
  // whole rate so far scaled to the window when the window was not sampled well (a slow read of the
  // signal, a late first observation) — a sampled 0 must not collapse a target that does absorb.
  double rate_in_window = elapsed > 0 ? static_cast<double>(last_back_ - back_at_start_) *
                                            static_cast<double>(tuning_.window_ms) / elapsed
                                      : 0.0;
  int64_t shown = std::max<int64_t>(back_in_window_, static_cast<int64_t>(std::floor(rate_in_window)));
  int64_t shrunk = std::clamp<int64_t>(shown, 1, std::max<int64_t>(1, wave_size_));
  if (last_back_ >= target()) {
    timeouts_in_row_ = 0;
    if (in_window) {
      // Grow from the wave that was absorbed, not from a cap- or remainder-trimmed plan.
      size_ = std::max<int64_t>(1, wave_size_) * 2;
      return Verdict::kAbsorbed;
    }
    size_ = shrunk;
    return Verdict::kBehind;
  }
  if (elapsed >= static_cast<double>(tuning_.timeout_ms)) {
    // Only a silent wave (no device back at all while it waited) speaks against the signal; a slow
    // target that still takes devices back keeps its small waves: dumping the rest on it would be the
    // storm pacing exists to avoid.
    timeouts_in_row_ = last_back_ > back_at_start_ ? 0 : timeouts_in_row_ + 1;
    size_ = shrunk;
    return Verdict::kTimeout;
  }
  return Verdict::kWait;
}

std::vector<int64_t> SplitWave(int64_t wave, const std::vector<int64_t>& remaining) {
  std::vector<int64_t> out(remaining.size(), 0);
  int64_t total = std::accumulate(remaining.begin(), remaining.end(), int64_t{0});
  if (total <= 0 || wave <= 0) return out;
  wave = std::min(wave, total);
  std::vector<std::pair<double, size_t>> rest;
  int64_t given = 0;
  for (size_t i = 0; i < remaining.size(); ++i) {
    double exact = static_cast<double>(wave) * static_cast<double>(remaining[i]) / static_cast<double>(total);
    out[i] = std::min(remaining[i], static_cast<int64_t>(std::floor(exact)));
    given += out[i];
    rest.push_back({exact - static_cast<double>(out[i]), i});
  }
  std::stable_sort(rest.begin(), rest.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
  for (size_t k = 0; given < wave; k = (k + 1) % rest.size()) {
    size_t i = rest[k].second;
    if (out[i] < remaining[i]) {
      ++out[i];
      ++given;
    }
  }
  return out;
}

}  // namespace headshift
