// PacedReset: resets the snapshotted sessions of a tenant on its session hosts, paced as
// sessions.pacing says, and reports the pacing (the `pacing` object of reset_sessions' journal details
// and of the migration report):
//
//   {"mode": "adaptive"|"fixed"|"unpaced", "signal": "batcher"|"api"|null, "cap_per_s": N, "devices": n,
//    "absorb_per_s": x, "waves": [{"wave", "size", "sent", "gone", "back", "ms", "absorb_per_s", "judged"}],
//    "fallback": null | "why adaptive pacing could not be used"}
//
//   unpaced   (cap 0) every host resets its whole snapshot at once; no waves, no observation.
//   fixed     every host resets its snapshot at cap_per_s (10 ms ticks); no observation.
//   adaptive  waves sized by WavePacer (playbooks/wave_pacer.h) from what the target shows back
//             (BackCounter); a wave is a sub-snapshot handed to the dataplane's KillSnapshot, split over
//             the hosts in proportion to the sockets each has left, all hosts at once, each host's share
//             spread at cap_per_s x share / wave. `back` of a wave = devices newly connected on the target
//             between its start and its verdict; `ms` = that time; the whole reset's absorb_per_s =
//             devices back / time from the first wave's start to the last device seen back.
//             If the target cannot be read when the reset starts, it falls back to fixed (fallback says
//             why).
//
// Fleet: a proxy host of a fleet (`sessions kill --snapshot-in --pace-*`) holds only its share of the
// tenant's sockets; with fleet_sockets = the fleet's total, the pacer reasons in fleet-wide waves and this
// host resets its proportional share of each, gated by the same target signal, so N hosts do not make N
// storms.
//
// Thread-safety: a function; it runs one thread per host during each wave (OnEachHost).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/config.h"
#include "common/status.h"
#include "dataplane/sessions.h"
#include "playbooks/target_back_counter.h"

namespace headshift {

struct PacedResetOptions {
  ResetPacing pacing = ResetPacing::kAdaptive;
  int64_t cap_per_s = 2000;  // 0 = unpaced
  SessionWavesConfig waves;
  int max_rounds = 3;        // TerminatorOptions::max_rounds of each host's kill
  // > 0: the tenant's sockets across the whole fleet, of which `snapshots` hold this host's share.
  int64_t fleet_sockets = 0;
  // Why adaptive pacing cannot be used (e.g. the target's view could not be read); forces fixed.
  std::string fallback;
  // One line per wave (when unset: logged at info level).
  std::function<void(const std::string&)> progress;
};

struct PacedResetResult {
  std::vector<TerminationReport> reports;  // one per host, in host order (counts and sockets of every wave)
  nlohmann::json pacing;
};

// REQUIRES: hosts[i] is the host of snapshots[i]; `back` is started (TargetBackCounter::Start) or null
// (then adaptive falls back to fixed).
StatusOr<PacedResetResult> RunPacedReset(const std::vector<SessionHost>& hosts,
                                         const std::vector<SessionSnapshot>& snapshots, BackCounter* back,
                                         const PacedResetOptions& options);

}  // namespace headshift
