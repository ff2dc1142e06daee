// LabBuilder: brings one sandbox lab up, part by part. Each part is one method, defined in the file
// of its part:
//   lab_up.cc         Up (the sequence), Step, Spawn, SaveState, MakeStateDir (sweeps leftovers of
//                     this lab), SweepDeadLabs (dead labs of LabOptions::sweep_prefix)
//   lab_network.cc    MakeNetwork (namespaces, veths, addresses), MakeLb (the DNAT namespace)
//   lab_database.cc   MakeDatabase (PostgreSQL, schema, seed, the fleet's client spec)
//   lab_standins.cc   StartStandins (one headscale-standin per cluster)
//   lab_edge.cc       StartHaproxy (the edge proxy and its tenant map)
//   lab_fleet.cc      StartFleet, WaitConnected (the client fleet)
//   lab_config.cc     WriteHeadshiftConfig (<state>/headshift.yaml)
// Every part records what it made in `lab_` (persisted to lab.json by SaveState before the next
// resource is made) so a failure at any point can be undone by LabDown from lab.json alone.
//
// Internal to the lab driver (sandbox/lab.h is the API). Not thread-safe: one builder per `up`.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/status.h"
#include "sandbox/lab.h"
#include "sandbox/lab_plan.h"
#include "sandbox/process.h"

namespace headshift::sandbox::lab {

// True (once) if SIGINT/SIGTERM arrived while LabUp runs: they are blocked, then consumed here.
bool Interrupted();

class LabBuilder {
 public:
  explicit LabBuilder(LabOptions o) : o_(std::move(o)) {}
  // REQUIRES: SIGINT/SIGTERM blocked in the calling thread (LabUp does it).
  StatusOr<LabInfo> Up();

 private:
  Status Step(const char* what, const std::function<Status()>& fn);
  Status SaveState();
  Status SweepDeadLabs();
  Status MakeStateDir();
  Status MakeNetwork();
  Status MakeLb();
  Status MakeDatabase();
  Status StartStandins();
  Status StartHaproxy();
  Status StartFleet();
  Status WriteHeadshiftConfig();
  Status WaitConnected();
  Status Spawn(const std::string& role, const std::string& key, const SpawnOptions& so, nlohmann::json extra);

  LabOptions o_;
  std::string dir_;
  std::string subnet_;  // "10.x.y."
  std::string prefix_;  // root link prefix
  std::vector<TenantPlan> tenants_;
  std::string standin_bin_, fleet_bin_, haproxy_bin_;
  std::map<std::string, std::string> cluster_dsn_;  // cluster -> DSN (text)
  std::map<std::string, pid_t> standin_pid_;
  nlohmann::json lab_;
  int fleet_shards_ = 0;
  int64_t fleet_clients_ = 0;
};

}  // namespace headshift::sandbox::lab
