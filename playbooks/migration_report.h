// MigrationReport: what one tenant migration did (or, for `plan`, would do), in the shape of the
// CLI contract: `--json` carries at least id, tenant, from, to, state, rows, sessions_reset,
// collateral, reconnected, reauth, timings_ms. `collateral` counts everything the run cost other
// tenants (reset shared-address sockets + devices a target restart disconnected), broken down in
// `collateral_detail`; it is null when the restart's share is unknown.
//
// Thread-safety: a value.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace headshift {

// The steps of one migration, in order (DESIGN.md "Migration state machine"): the names of the
// step table, playbooks/steps/step_table.cc.
const std::vector<std::string>& MigrationSteps();

// Something that could go wrong, found by plan/preflight. `kind` names it for automation
// (noise_key_mismatch, no_reload_command, target_restart, shared_addresses, no_client_addresses,
// no_session_hosts), `message` says it for people, `details` carries its numbers (merged into the
// JSON object next to kind and message).
struct Risk {
  std::string kind;
  std::string message;
  nlohmann::json details = nlohmann::json::object();

  nlohmann::json ToJson() const;
  static Risk FromJson(const nlohmann::json& j);  // also takes the plain strings of older journals
};

// What reloading the target control plane cost (migrate) or would cost (plan). On headscale >= 0.27
// the reload is a restart: every control connection the target holds drops, so the target's other
// tenants' devices reconnect. `devices` is nullopt when their count could not be read (the report
// then says "unknown", never 0).
struct TargetRestartReport {
  std::string cluster;
  bool planned = false;         // plan/preflight: what a migration would do now
  bool drops_sessions = false;  // clusters[].reload_drops_sessions (and a reload_command is set)
  // migrate: the target did not serve every node key of the tenant; plan: the target caches nodes
  // (cached_nodes), so the copied rows need a reload.
  bool reload_needed = false;
  bool reloaded = false;        // the reload command ran
  bool restarted = false;       // it ran and restarts the control plane (plan: would)
  std::optional<int64_t> devices;           // other tenants' devices online on the target before
  std::map<std::string, int64_t> tenants;   // of those, per tenant
  std::string unknown_reason;               // why `devices` is unknown
  int64_t reconnected = 0;                  // of `devices`, online on the target again afterwards
  std::vector<std::string> stragglers;      // "tenant/device" not back by timeouts.reconnect_ms
  double reconnect_ms = 0;                  // from the restart until the last of them was back

  // The devices this costs (restarted or would restart): 0, their count, or nullopt (unknown).
  std::optional<int64_t> Collateral() const;
  // One line for people, e.g. "reloading cluster 4 restarts it: 12 online devices of 3 other
  // tenants (a, b, c) will reconnect".
  std::string Describe() const;
  nlohmann::json ToJson() const;
  static TargetRestartReport FromJson(const nlohmann::json& j);
};

struct MigrationReport {
  std::string id;
  std::string tenant;
  std::string from;
  std::string to;
  std::string layout;
  std::string state;  // running | paused | complete | rolled_back | failed | refused | needs_operator | planned
  std::string step;   // the last step started
  std::string paused_after;  // state paused: the last step done (migrate/resume --until, or a fleet's cut)
  std::string next_step;     // state paused: where `resume` continues
  std::vector<std::string> external_steps;  // steps done outside headshift (resume --from: a fleet's cut)
  std::map<std::string, int64_t> rows;  // per table
  int64_t sessions_selected = 0;        // sockets in the pre-flip snapshot
  int64_t sessions_reset = 0;
  int64_t sessions_gone = 0;            // closed before they could be reset
  int64_t sessions_failed = 0;
  int64_t sessions_collateral = 0;      // reset sockets whose client address another tenant also uses
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
  std::optional<TargetRestartReport> target_restart;  // set once preflight or target_ready ran
  std::vector<Risk> risks;              // plan: what could go wrong
  nlohmann::json conflicts = nlohmann::json::array();  // preflight or catch-up conflicts
  nlohmann::json sessions_by_host = nlohmann::json::object();  // host -> counts (plan: would reset)
  // How the reset was paced (playbooks/paced_reset.h: mode, signal, cap_per_s, devices, absorb_per_s,
  // waves); null until reset_sessions ran.
  nlohmann::json pacing;
  std::map<std::string, double> timings_ms;  // per step, plus "total"
  std::vector<std::string> warnings;
  // The tenant's ACL policy (PolicyMovePlan::ToJson: diffs per node, owned tags, issues); null = not read.
  nlohmann::json policy;
  // Node parity (preflight): each difference of the two nodes with its severity and fix.
  nlohmann::json parity = nlohmann::json::array();
  // The tailnet check after the cut (steps/tailnet.cc); null until it ran.
  nlohmann::json tailnet;
  // Stale entries removed from a node's memory (complete: source; rollback: target); null until then.
  nlohmann::json ghosts;

  // Everything this migration cost other tenants: sessions_collateral plus the devices a target
  // restart disconnected (plan: would). nullopt when the restart's count is unknown.
  std::optional<int64_t> Collateral() const;
  // The target restart's share of it (0 without one; a planned one counts only in a plan).
  std::optional<int64_t> RestartCollateral() const;

  nlohmann::json ToJson() const;
  std::string ToText() const;
};

}  // namespace headshift
