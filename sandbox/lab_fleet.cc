// The lab's fleet part: the hs-fleet shards in the clients namespace, and the wait until every
// client is connected.
#include <chrono>
#include <filesystem>
#include <thread>

#include "sandbox/event_loop.h"
#include "sandbox/fleet_summary.h"
#include "sandbox/lab_builder.h"
#include "sandbox/lab_naming.h"

namespace fs = std::filesystem;

namespace headshift::sandbox::lab {

Status LabBuilder::StartFleet() {
  fleet_shards_ = 0;
  if (o_.fleet && fleet_clients_ > 0) {
    fleet_shards_ = static_cast<int>((fleet_clients_ + o_.clients_per_process - 1) / o_.clients_per_process);
  }
  lab_["fleet"] = {{"dir", dir_ + "/fleet"}, {"spec", dir_ + "/fleet/clients.json"}, {"shards", fleet_shards_},
                   {"clients", fleet_shards_ ? fleet_clients_ : 0}};
  for (int i = 0; i < fleet_shards_; ++i) {
    SpawnOptions so;
    so.argv = {fleet_bin_, "--spec", dir_ + "/fleet/clients.json", "--shard", std::to_string(i), "--shards",
               std::to_string(fleet_shards_), "--out-dir", dir_ + "/fleet"};
    so.netns = NsName(o_.name, "clients");
    so.log_file = dir_ + "/logs/fleet-" + std::to_string(i) + ".log";
    HS_RETURN_IF_ERROR(Spawn("fleet", "fleet-" + std::to_string(i), so, {{"shard", i}}));
  }
  return Status::Ok();
}

Status LabBuilder::WaitConnected() {
  if (fleet_shards_ == 0) return Status::Ok();
  int64_t deadline = MonoMs() + o_.connected_timeout_ms;
  for (;;) {
    FleetSummary s = ReadFleetSummary(dir_ + "/fleet", fleet_shards_, 0, 0);
    if (s.AllConnected() && s.Clients() == fleet_clients_) return Status::Ok();
    if (Interrupted()) return Status::Failed("interrupted (SIGINT/SIGTERM)");
    if (MonoMs() > deadline) {
      return Status::Failed(std::to_string(s.Connected()) + " of " + std::to_string(fleet_clients_) +
                                " clients connected within " + std::to_string(o_.connected_timeout_ms) + " ms",
                            "see " + dir_ + "/logs and `headshift sandbox status`");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}
}  // namespace headshift::sandbox::lab
