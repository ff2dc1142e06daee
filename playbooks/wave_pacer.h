// WavePacer: the closed-loop rule that sizes the waves of a session reset by what the target control
// plane is seen to absorb. Pure decision logic: it is told what was sent and what the target shows back
// (a cumulative count of the tenant's devices newly connected there, from its own view:
// controlplane/connected_nodes.h) with the time, and answers the size of the next wave and when it may
// go. It reads no clock and no network, so it is unit-tested with made-up observations.
//
// Why: a reset device redials at once, and a control plane's reconnect cost grows with how many
// reconnect together (real headscale v0.29: 250 devices back in ~1.3 s, 1,000 at once over a minute on
// 2 cores). A fixed rate either storms a slow target or wastes time on a fast one.
//
// The rule (units: sockets sent, devices back; one control connection per device is tailscale's norm):
//   * Start small: the first wave is `first` sockets.
//   * A wave is absorbed when the devices back since the reset began reach back_fraction x
//     min(sockets reset so far, devices expected). Cumulative on purpose: a straggler of an earlier wave
//     that comes back later counts when it does.
//   * Absorbed within window_ms of the wave's start: the next wave is twice as big (grow while the
//     target keeps up).
//   * Absorbed later than the window (fell behind): the next wave is what came back within the window,
//     or the wave's rate so far scaled to one window if that is more (a window sampled late or by a
//     slow read must not collapse the wave) — at least 1, at most this wave: the target's demonstrated
//     absorption in one window.
//   * Not absorbed by timeout_ms: the next wave goes anyway, sized as when behind (never stalls the cut).
//     After kMaxTimeouts silent timeouts in a row (waves during which not one device came back) the
//     signal is not trusted: the rest goes as one last wave. A timeout with devices coming back is a
//     slow target, not a broken signal: its waves stay small.
//   * The cap: no wave is bigger than cap_per_s x window_ms / 1000 (the rate cap, --reset-rate; 0 = none);
//     the caller also spreads each wave's resets at cap_per_s.
//
// Thread-safety: a value; one thread.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/config.h"

namespace headshift {

class WavePacer {
 public:
  static constexpr int kMaxTimeouts = 2;

  enum class Verdict { kWait, kAbsorbed, kBehind, kTimeout };
  static const char* VerdictName(Verdict v);

  // `sockets` to reset in all, `devices` expected back (the tenant's devices not already connected on
  // the target). REQUIRES: tuning as validated by the config (first >= 1, window <= timeout).
  WavePacer(int64_t sockets, int64_t devices, int64_t cap_per_s, const SessionWavesConfig& tuning);

  // Sockets the next wave should hand over (0 when every socket was handed over).
  int64_t NextWave() const;
  // A wave started at `now_ms`: `handed` sockets handed over, `reset` of them reset (the others were
  // gone already), `back` the cumulative count of devices back at that moment.
  // REQUIRES: the previous wave was judged (Observe returned something else than kWait).
  void Sent(int64_t handed, int64_t reset, int64_t back, double now_ms);
  // An observation of the cumulative devices back at `now_ms`. kWait: keep observing; anything else
  // judges the current wave (and sizes the next).
  Verdict Observe(int64_t back, double now_ms);

  int64_t remaining() const { return sockets_ - handed_; }
  bool given_up() const { return timeouts_in_row_ >= kMaxTimeouts; }
  // The largest wave the cap allows (0: no cap).
  int64_t cap_wave() const { return cap_wave_; }
  // The current wave's devices back since it started, and within its window.
  int64_t wave_back() const { return last_back_ - back_at_start_; }
  int64_t wave_back_in_window() const { return back_in_window_; }
  // The devices the current wave needs back in all to be absorbed.
  int64_t target() const;

 private:
  int64_t sockets_;
  int64_t devices_;
  int64_t cap_wave_;
  SessionWavesConfig tuning_;
  int64_t size_;             // the next wave's size before remaining/cap
  int64_t handed_ = 0;
  int64_t reset_ = 0;        // cumulative sockets reset
  int64_t back_at_start_ = 0;
  int64_t back_in_window_ = 0;
  int64_t last_back_ = 0;
  int64_t wave_size_ = 0;    // the current wave's size
  double started_ms_ = 0;
  int timeouts_in_row_ = 0;
};

// Splits a wave of `wave` sockets over hosts with `remaining[h]` sockets left each, proportionally to
// what each has left (largest remainders first; never more than a host has). Sums to min(wave, total).
std::vector<int64_t> SplitWave(int64_t wave, const std::vector<int64_t>& remaining);

}  // namespace headshift
