// Reading what a migration's journal record says about one step: whether it started or finished,
// the details it recorded, and whether it was done outside headshift (`resume --from`, a fleet's
// cut). The journal's step names and details keys are the on-disk format: see README "Migrating a
// tenant".
//
// Thread-safety: functions of a value.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "migrate/journal.h"

namespace headshift {

inline bool StepDone(const migrate::MigrationRecord& rec, const std::string& step) {
  const migrate::JournalStep* s = rec.Step(step);
  return s && s->state == "done";
}

inline bool StepStarted(const migrate::MigrationRecord& rec, const std::string& step) {
  return rec.Step(step) != nullptr;
}

// The details `step` recorded ({} if it never started).
inline nlohmann::json StepDetails(const migrate::MigrationRecord& rec, const std::string& step) {
  const migrate::JournalStep* s = rec.Step(step);
  return s ? s->details : nlohmann::json::object();
}

// Recorded by `resume --from` as done outside headshift (a fleet playbook ran it on its proxy hosts).
inline bool StepExternal(const migrate::MigrationRecord& rec, const std::string& step) {
  return StepDetails(rec, step).value("external", false);
}

}  // namespace headshift
