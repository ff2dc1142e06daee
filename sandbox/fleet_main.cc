// hs-fleet: one shard of the sandbox's simulated tailscale client fleet (sandbox/fleet.h).
//
//   hs-fleet --spec clients.json --shard I --shards K --out-dir DIR
// takes clients [I·N/K, (I+1)·N/K) of the spec, writes DIR/shard-I.json (every --summary-ms) and
// DIR/shard-I.clients.json (per-client records, once a second when changed). Run it inside the
// network namespace that owns the clients' source addresses. SIGUSR1 zeroes counters; SIGTERM stops.
#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>

#include "common/logging.h"
#include "sandbox/fleet.h"

using namespace headshift;
using namespace headshift::sandbox;

int main(int argc, char** argv) {
  CLI::App app{"hs-fleet: simulated tailscale clients for the headshift sandbox lab"};
  std::string spec, out_dir, log_level = "info";
  int shard = 0, shards = 1;
  FleetOptions o;
  app.add_option("--spec", spec, "fleet spec JSON ({\"clients\": [...]})")->required();
  app.add_option("--shard", shard, "this shard's index")->default_val(0);
  app.add_option("--shards", shards, "number of shards")->default_val(1)->check(CLI::Range(1, 10000));
  app.add_option("--out-dir", out_dir, "directory for shard-I.json and shard-I.clients.json")->required();
  app.add_option("--summary-ms", o.summary_ms, "summary period")->default_val(200)->check(CLI::Range(10, 60000));
  app.add_option("--ramp-ms", o.ramp_ms, "spread initial connects over this many ms (-1: auto)")->default_val(-1);
  app.add_option("--connect-timeout-ms", o.connect_timeout_ms)->default_val(5000);
  app.add_option("--poll-timeout-ms", o.poll_timeout_ms, "abort a stream silent this long")->default_val(120000);
  app.add_option("--max-backoff-ms", o.max_backoff_ms)->default_val(30000);
  app.add_option("--log-level", log_level)->default_val("info");
  CLI11_PARSE(app, argc, argv);
  if (auto st = InitLogging(log_level); !st.ok()) {
    fprintf(stderr, "hs-fleet: %s\n", st.ToString().c_str());
    return 2;
  }
  if (shard < 0 || shard >= shards) {
    spdlog::error("--shard {} is outside [0, {})", shard, shards);
    return 2;
  }
  auto all = LoadFleetSpec(spec);
  if (!all.ok()) {
    spdlog::error("{}", all.status().ToString());
    return ToInt(all.status().code());
  }
  size_t n = all->size();
  size_t begin = n * static_cast<size_t>(shard) / static_cast<size_t>(shards);
  size_t end = n * static_cast<size_t>(shard + 1) / static_cast<size_t>(shards);
  o.clients.assign(all->begin() + static_cast<long>(begin), all->begin() + static_cast<long>(end));
  o.shard = shard;
  o.summary_file = out_dir + "/shard-" + std::to_string(shard) + ".json";
  o.clients_file = out_dir + "/shard-" + std::to_string(shard) + ".clients.json";
  Fleet fleet(std::move(o));
  if (Status st = fleet.Start(); !st.ok()) {
    spdlog::error("{}", st.ToString());
    return ToInt(st.code());
  }
  spdlog::info("hs-fleet shard {}/{}: {} clients", shard, shards, end - begin);
  fleet.Run();
  return 0;
}
