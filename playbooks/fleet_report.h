// FleetReport and PlaybookRunReport: what a fleet operation (drain, rebalance, move) and a playbook
// run (`headshift apply`) did, as JSON (the CLI's --json contract) and as text for people.
//
// Thread-safety: values.
#pragma once

#include <map>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "playbooks/migration_report.h"
#include "playbooks/placement.h"

namespace headshift {

struct FleetReport {
  std::string operation;                  // drain | rebalance | move
  std::vector<PlannedMove> plan;
  std::vector<MigrationReport> completed;
  std::vector<std::pair<PlannedMove, std::string>> failed;  // move, error
  std::vector<PlannedMove> pending;       // planned, not started (stopped after a failure)
  std::vector<std::string> skipped;       // tenants already where they should be
  // Copied, verified and their policy written, paused before target_ready (journal state paused at
  // `policy`): the batch stopped before their cut. `headshift resume ID` (or the same command again)
  // continues each; `headshift rollback ID` undoes it.
  std::vector<std::pair<PlannedMove, std::string>> paused;  // move, migration id
  // Restarts per target cluster: what the batch did (dry run: would do). JSON `target_restarts`.
  std::map<std::string, int> target_restarts;
  // Per target cluster: the dry run's restart plan (batch_plan.h) or the restart reports of the run
  // (batch_restart.h). JSON `target_restart_detail`.
  nlohmann::json target_restart_detail = nlohmann::json::object();
  nlohmann::json extra = nlohmann::json::object();  // operation-specific (loads, tolerance band)
  bool ok() const { return failed.empty() && pending.empty() && paused.empty(); }
  nlohmann::json ToJson() const;
  std::string ToText() const;
};

struct PlaybookRunReport {
  std::string run_id;
  std::string playbook;
  std::string state;  // complete | paused | failed | planned
  int next_step = 0;  // index of the first step not done
  std::vector<nlohmann::json> steps;  // per step: {index, step, state, report}
  nlohmann::json ToJson() const;
  std::string ToText() const;
};

}  // namespace headshift
