// The CommandResult of a fleet operation (drain, rebalance, multi-tenant migrate): the report as JSON
// and text; exit 1 when some move failed, is pending or is paused before its cut (the report names
// them, with the ids `headshift resume` continues).
#pragma once

#include <string>

#include "cli/command.h"
#include "playbooks/fleet_report.h"

namespace headshift::cli {

inline CommandResult FromFleet(const StatusOr<FleetReport>& r) {
  if (!r.ok()) return Fail(r.status());
  CommandResult out;
  out.json = r->ToJson();
  out.text = r->ToText();
  if (!r->ok()) {
    std::string resume;
    for (const auto& [m, id] : r->paused) resume += (resume.empty() ? "" : ", ") + ("`headshift resume " + id + "`");
    out.status = Status::Failed(std::to_string(r->failed.size()) + " move(s) failed, " +
                                    std::to_string(r->pending.size()) + " still pending, " +
                                    std::to_string(r->paused.size()) + " paused before the cut",
                                "see the report; failed moves before their cut were rolled back; re-run the same "
                                "command to continue" + (resume.empty() ? std::string() : " (or " + resume + ")"));
  }
  return out;
}

}  // namespace headshift::cli
