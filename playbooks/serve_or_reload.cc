#include "playbooks/serve_or_reload.h"

#include <thread>

#include "common/subprocess.h"

namespace headshift {

Status ServeOrReload(const Config& config, const std::string& to, const ServeWait& wait, TargetRestartReport& tr,
                     MigrationClock::time_point& reloaded_at) {
  const ClusterConfig* target = config.FindCluster(to);
  auto deadline = MigrationClock::now() + std::chrono::milliseconds(config.timeouts.target_ready_ms);
  int64_t missing = wait.wanted;
  std::string last_error;
  for (;;) {
    auto answer = wait.missing();
    if (answer.ok()) {
      missing = *answer;
      if (missing == 0) return Status::Ok();
    } else {
      last_error = answer.status().message();
    }
    if (answer.ok() && !tr.reloaded && !target->reload_command.empty()) {
      tr.reload_needed = true;
      HS_RETURN_IF_ERROR(wait.before_reload(missing));
      reloaded_at = MigrationClock::now();
      auto pr = RunArgv(target->reload_command, config.timeouts.reload_command_ms);
      if (!pr.ok()) return pr.status().WithContext("reload command of cluster " + to);
      tr.reloaded = true;
      tr.restarted = tr.drops_sessions;
      if (pr->exit_code != 0) {
        return Status::Failed("reload command of cluster " + to + " exited " + std::to_string(pr->exit_code) +
                              (pr->timed_out ? " (timed out)" : "") + ": " + pr->output.substr(0, 500));
      }
      continue;
    }
    if (MigrationClock::now() > deadline) {
      return Status::Failed("cluster " + to + " does not serve " + std::to_string(missing) + " of " +
                                std::to_string(wait.wanted) + " node keys of " + wait.whose + " after " +
                                std::to_string(config.timeouts.target_ready_ms) + " ms" +
                                (last_error.empty() ? "" : " (last error: " + last_error + ")"),
                            target->reload_command.empty()
                                ? "set clusters[" + to + "].reload_command so headscale reloads its nodes"
                                : "check that the reload command makes headscale re-read its database");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

}  // namespace headshift
