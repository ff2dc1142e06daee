// The lab's stand-in part: one headscale-standin per cluster, in the cluster's namespace.
#include <chrono>
#include <filesystem>
#include <thread>

#include "common/atomic_file.h"
#include "sandbox/event_loop.h"
#include "sandbox/lab_builder.h"
#include "sandbox/lab_commands.h"
#include "sandbox/lab_naming.h"

namespace fs = std::filesystem;

namespace headshift::sandbox::lab {

Status LabBuilder::StartStandins() {
  std::string noise = "mkey:" + RandomHex(32);
  for (size_t k = 0; k < o_.clusters.size(); ++k) {
    const std::string& c = o_.clusters[k];
    std::string key_file = dir_ + "/secrets/apikey-" + c;
    HS_RETURN_IF_ERROR(WriteSecret(key_file, "hskey-api-" + RandomHex(6) + "-" + RandomHex(24)));
    std::string dsn_file = o_.layout == DbLayout::kShared ? dir_ + "/secrets/dsn" : dir_ + "/secrets/dsn-" + c;
    std::string key = (k > 0 && o_.different_noise_keys) ? "mkey:" + RandomHex(32) : noise;
    std::string ready = dir_ + "/standin-" + c + ".json";
    SpawnOptions so;
    so.argv = {standin_bin_, "--cluster-id", c, "--listen", "0.0.0.0:" + std::to_string(kStandinPort), "--dsn-file",
               dsn_file, "--api-key-file", key_file, "--noise-key", key, "--lookup", LookupModeName(o_.lookup),
               "--keepalive-ms", std::to_string(o_.keepalive_ms), "--disconnect-grace-ms",
               std::to_string(o_.disconnect_grace_ms), "--ready-file", ready};
    if (o_.reload_drops_sessions) so.argv.push_back("--reload-drops-streams");
    if (auto a = o_.absorb_per_s.find(c); a != o_.absorb_per_s.end() && a->second > 0) {
      so.argv.insert(so.argv.end(), {"--absorb-per-s", std::to_string(a->second)});
    }
    so.netns = NsName(o_.name, "c" + c);
    so.log_file = dir_ + "/logs/standin-" + c + ".log";
    HS_RETURN_IF_ERROR(Spawn("standin", "standin-" + c, so, {{"cluster", c}}));
    standin_pid_[c] = lab_["processes"].back()["pid"].get<pid_t>();
    auto& cj = lab_["clusters"][c];
    cj["api_key_file"] = key_file;
    cj["dsn_file"] = dsn_file;
    cj["noise_key"] = key;
    cj["lookup"] = LookupModeName(o_.lookup);
    cj["pid"] = standin_pid_[c];
  }
  // Ready when each has written its ready file (after binding and, in cached mode, loading).
  int64_t deadline = MonoMs() + 15000;
  for (const auto& c : o_.clusters) {
    std::string ready = dir_ + "/standin-" + c + ".json";
    while (!fs::exists(ready)) {
      if (!ProcessAlive(standin_pid_[c], -1)) {
        auto log = ReadFile(dir_ + "/logs/standin-" + c + ".log");
        return Status::Failed("stand-in of cluster " + c + " exited at start: " + (log.ok() ? *log : ""));
      }
      if (MonoMs() > deadline) return Status::Failed("stand-in of cluster " + c + " not ready within 15 s");
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }
  return Status::Ok();
}
}  // namespace headshift::sandbox::lab
