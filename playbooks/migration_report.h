// MigrationReport: what one tenant migration did (or, for `plan`, would do), in the shape of the
// CLI contract: `--json` carries at least id, tenant, from, to, state, rows, sessions_reset,
// collateral, reconnected, reauth, timings_ms.
//
// Thread-safety: a value.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace headshift {

// The steps of one migration, in order (DESIGN.md "Migration state machine").
inline const std::vector<std::string>& MigrationSteps() {
  static const std::vector<std::string> kSteps = {
      "preflight",   "copy",       "verify",         "target_ready", "snapshot_sessions", "switch_route",
      "route_live",  "reset_sessions", "reconnected", "catch_up",     "complete"};
  return kSteps;
}

struct MigrationReport {
  std::string id;
  std::string tenant;
  std::string from;
  std::string to;
  std::string layout;
  std::string state;  // running | complete | rolled_back | failed | refused | needs_operator | planned
  std::string step;   // the last step started
  std::map<std::string, int64_t> rows;  // per table
  int64_t sessions_selected = 0;        // sockets in the pre-flip snapshot
  int64_t sessions_reset = 0;
  int64_t sessions_gone = 0;            // closed before they could be reset
  int64_t sessions_failed = 0;
  int64_t collateral = 0;               // reset sockets whose client address another tenant also uses
  int64_t online_before = 0;            // devices online on the source before the cut
  int64_t reconnected = 0;              // of those, online on the target afterwards
  int64_t reauth = 0;                   // tenant node keys the target does not serve (would need login)
  std::vector<std::string> stragglers;  // online before, not back on the target by the deadline
  std::vector<std::string> spared;      // online before, behind a shared address: left to reconnect later
  std::vector<std::string> client_addresses;  // selected client addresses (CIDRs)
  std::map<std::string, std::vector<std::string>> shared_addresses;  // address -> other tenants
  bool shared_reset = false;            // --allow-shared: shared addresses were reset too
  std::string route_before;             // cluster id (or backend) before the flip
  std::string route_after;
  bool reloaded_target = false;         // the target's reload command ran
  std::vector<std::string> risks;       // plan: what could go wrong
  nlohmann::json conflicts = nlohmann::json::array();  // preflight or catch-up conflicts
  nlohmann::json sessions_by_host = nlohmann::json::object();  // host -> counts (plan: would reset)
  std::map<std::string, double> timings_ms;  // per step, plus "total"
  std::vector<std::string> warnings;

  nlohmann::json ToJson() const;
  std::string ToText() const;
};

}  // namespace headshift
