// ServeOrReload: the wait that target_ready (one tenant) and the batch restart (several, one reload) both run on
// a target cluster. It polls the target's API until it serves every wanted node key. When an answer lacks some
// and the cluster has a reload command, it runs that command once: on headscale >= 0.27 a restart, the only way
// it loads rows it did not write (research/headscale-internals.md). An API that does not answer (it may be
// restarting) is polled, never restarted on a guess.
//
// Thread-safety: a function; the callbacks run on the calling thread.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "common/config.h"
#include "common/status.h"
#include "playbooks/migration_run.h"
#include "playbooks/target_restart.h"

namespace headshift {

struct ServeWait {
  // The wanted node keys the target does not serve yet (0: all of them); an error when its API does not answer.
  std::function<StatusOr<int64_t>()> missing;
  // Runs once, right before the reload command, with the keys still missing: counts what a restart drops
  // (tr.devices) and says what is about to happen. A non-OK status stops the wait; the command does not run.
  std::function<Status(int64_t missing)> before_reload;
  int64_t wanted = 0;   // keys checked, for the error
  std::string whose;    // "hsa", "the batch": for the error
};

// Waits on cluster `to` (REQUIRES: a configured cluster) as above. Records in `tr` reload_needed, reloaded
// (the command ran: whatever it did counts, even if it failed) and restarted (reload_drops_sessions), and in
// `reloaded_at` when the command started. Failed when the command fails or exits non-zero, or the keys are
// not served within timeouts.target_ready_ms (naming the fix).
Status ServeOrReload(const Config& config, const std::string& to, const ServeWait& wait, TargetRestartReport& tr,
                     MigrationClock::time_point& reloaded_at);

}  // namespace headshift
