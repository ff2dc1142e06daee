// Planner: builds the MovePlan of a tenant (plan and preflight). Strictly read-only: it only runs
// SELECTs (no temp tables, no headshift tables created), so running it never changes a database.
// Every check runs even when an earlier one failed, so the operator sees all problems at once.
//
// Thread-safety: not thread-safe (uses the context's cached connections).
#pragma once

#include <string>

#include "migrate/move_context.h"
#include "migrate/move_plan.h"

namespace headshift::migrate {

class Planner {
 public:
  explicit Planner(MoveContext& ctx) : ctx_(ctx) {}

  // Conflicts are part of the plan (not an error). Errors: BadInput (profile does not match the source
  // schema, a DSN problem), Failed (a database cannot be reached or a query failed).
  StatusOr<MovePlan> Plan(const std::string& tenant, const std::string& from, const std::string& to);

 private:
  MoveContext& ctx_;
};

}  // namespace headshift::migrate
