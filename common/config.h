// Config: the typed model of headshift.yaml (annotated example: playbooks/examples/headshift.yaml).
//
// LoadConfig() parses with yaml-cpp and rejects, with the YAML line/column and the key path:
// unknown keys, wrong types, missing required fields, invalid values and dangling references
// (e.g. a session host's conntrack namespace or a cluster id used twice). Secrets are never inline:
// DSNs, API keys and passwords are named by an environment variable (`*_env`) or a file (`*_file`)
// and resolved by ResolveSecret(), which registers the value with the Redactor.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"

namespace headshift {

// Where a secret comes from: exactly one of env / file is set.
struct SecretRef {
  std::string env;   // environment variable name
  std::string file;  // path of a file holding the secret (trailing newline stripped)
  bool empty() const { return env.empty() && file.empty(); }
  std::string Describe() const { return env.empty() ? "file " + file : "env $" + env; }
};

// Reads the secret and registers it for redaction. BadInput if unset/unreadable.
StatusOr<std::string> ResolveSecret(const SecretRef& ref, const std::string& what);
// Reads a libpq DSN; registers only its password for redaction, so host/port/dbname stay visible
// in logs and errors.
StatusOr<std::string> ResolveDsn(const SecretRef& ref, const std::string& what);

enum class DbLayout { kShared, kSplit };
const char* DbLayoutName(DbLayout l);

// `database.cluster_column: none`: the tenant tables have no cluster column (stock headscale, one
// database per node: the cluster is the DSN). Valid only with `layout: split`.
inline constexpr const char* kNoClusterColumn = "none";

struct DatabaseConfig {
  DbLayout layout = DbLayout::kShared;
  SecretRef dsn;               // shared layout: the one database (required there)
  std::string schema_profile;  // optional YAML schema profile; empty = built-in headscale profile
  // Overrides the schema profile's cluster_column: "" = the profile's (cluster_id in the built-in one),
  // kNoClusterColumn = none (split only), otherwise a column name.
  std::string cluster_column;
  bool NoClusterColumn() const { return cluster_column == kNoClusterColumn; }
};

struct ClusterConfig {
  std::string id;                     // cluster_id value as text ("3")
  std::string control_url;            // headscale base URL, e.g. http://10.0.3.2:8080
  SecretRef api_key;                  // headscale API key (Bearer)
  std::string backend;                // proxy backend / Traefik service name for this cluster
  SecretRef dsn;                      // split layout: this cluster's database (required there)
  std::vector<std::string> reload_command;  // argv run to make the control plane reload its nodes
  int64_t capacity = 0;               // max devices (0 = unlimited), used by drain/rebalance
  bool cached_nodes = false;          // the control plane caches nodes (headscale >= 0.27 NodeStore)
  bool cordon_ok = true;              // reserved: may receive tenants
  std::string upstream_url;           // URL the proxy uses to reach this node (Traefik service server);
                                      // defaults to control_url (last, so positional initialisers still work)
  // What running reload_command costs: true = it restarts the control plane, so every control
  // connection the node holds drops (its other tenants' devices reconnect, with their keys, after a
  // short interruption). headscale >= 0.27 reloads nodes only by a restart (SIGHUP reloads only the
  // ACL policy), so this defaults to true; set false only for a reload that keeps connections.
  bool reload_drops_sessions = true;
  // headscale's debug listener (its `metrics_listen_addr`, e.g. http://10.0.3.2:9090), optional: the node
  // parity check (policy mode, dns.base_domain, MagicDNS, prefixes, DERP map, OIDC issuer) and the
  // tenant's packet filter are read from its /debug/config, /debug/derp and /debug/filter. headscale
  // answers them only to loopback, Tailscale and private (RFC 1918/4193) addresses. Empty: not read.
  std::string debug_url;
  // The node's ACL policy in `policy.mode: file` (headshift then writes this file atomically and runs
  // policy_reload_command, e.g. [systemctl, kill, -s, HUP, headscale@3]: SIGHUP reloads the policy).
  // Empty: the node keeps its policy in the database and headshift uses the API's SetPolicy.
  std::string policy_file;
  std::vector<std::string> policy_reload_command;
};

struct HttpAuthConfig {
  std::string basic_user;
  SecretRef basic_password;
  SecretRef bearer_token;
};

struct TlsClientConfig {
  std::string ca_file;
  bool insecure_skip_verify = false;
};

struct TraefikConfig {
  std::string directory;                 // file provider directory headshift writes into
  std::string api_url;                   // e.g. http://127.0.0.1:8080 (empty = no live check)
  HttpAuthConfig api_auth;
  TlsClientConfig api_tls;
  std::string router_template = "{tenant}";          // router name
  std::string host_template = "{tenant}.example.com";  // Host() of the rule
  std::vector<std::string> entry_points;
  std::string cert_resolver;            // optional: tls.certResolver on the router
  bool tls = false;                     // router has tls: {}
  bool tcp_passthrough = false;         // also a TCP HostSNI router
  int schema_version = 3;               // 2 or 3
  int64_t throttle_ms = 2000;           // providersThrottleDuration
  std::string file_prefix = "headshift-";  // owned files start with this
};

struct HaproxyConfig {
  std::string runtime_socket;  // stats socket with level admin
  std::string map_file;        // host -> backend map
  std::string host_template = "{tenant}.example.com";
};

// kFleet: the tenant routes live on several proxy hosts, each changed by `headshift route` /
// `headshift sessions` run on that host (playbooks/ansible); a migration run here changes no route and
// no session and pauses for the fleet's cut (README "Several proxy hosts").
enum class ProxyKind { kTraefikFile, kHaproxy, kFleet };
const char* ProxyKindName(ProxyKind k);

struct ProxyConfig {
  ProxyKind kind = ProxyKind::kHaproxy;
  TraefikConfig traefik;
  HaproxyConfig haproxy;
};

struct SessionHostConfig {
  std::string name;
  std::string netns;            // path or name under /run/netns; empty = this process's netns
  std::vector<uint16_t> ports;  // listen ports of the proxy
  std::string conntrack_netns;  // optional: namespace whose conntrack maps clients to NAT tuples
};

// How a migration paces the reset of a tenant's sessions (sessions.pacing).
//   kAdaptive  closed loop: waves whose size follows what the target is seen to absorb (its own view of
//              the tenant's devices connected: /debug/batcher or the API's `online`), playbooks/wave_pacer.h;
//              reset_rate caps it.
//   kFixed     open loop: every socket at reset_rate per second per session host, in 10 ms ticks.
enum class ResetPacing { kAdaptive, kFixed };
const char* ResetPacingName(ResetPacing p);
// "adaptive" | "fixed"; BadInput naming the choices otherwise.
StatusOr<ResetPacing> ParseResetPacing(const std::string& s);

// sessions.waves: the tuning of adaptive pacing (playbooks/wave_pacer.h states the rule).
struct SessionWavesConfig {
  int64_t first = 16;          // sockets in the first wave
  int64_t window_ms = 1000;    // a wave absorbed within this grows the next (x2); later: it shrinks
  double back_fraction = 0.9;  // absorbed = this share of the devices reset so far is back on the target
  int64_t timeout_ms = 15000;  // a wave not absorbed by then: the next goes anyway (never stalls the cut)
};

struct SessionsConfig {
  std::vector<SessionHostConfig> hosts;
  bool allow_shared = false;
  // The cap of a migration's session reset, in resets per second (0 = unpaced: everything at once, no
  // waves, no observation). Fixed pacing applies it per session host; adaptive pacing caps each wave at
  // what the rate allows in one window and spreads a wave's resets at this rate. The default keeps a
  // small tenant's cut instantaneous (70 devices: 35 ms) and measured 7x lower p99 interruptions on a
  // 1,000-device tenant against all at once (bench/RESULTS.md, fixed pacing on the stand-ins).
  int64_t reset_rate = 2000;
  ResetPacing pacing = ResetPacing::kAdaptive;
  SessionWavesConfig waves;
};

// Per-tenant settings (optional; tenants not listed use defaults).
struct TenantConfig {
  std::vector<std::string> extra_cidrs;       // client CIDRs beyond those found in nodes.endpoints
  std::vector<std::string> allowed_clusters;  // where drain/rebalance may place it (empty = anywhere)
};

struct JournalConfig {
  std::string location = "shared";  // "shared" (the shared DB) or "target" (the target cluster's DB)
};

struct TimeoutsConfig {
  int64_t db_connect_ms = 5000;
  int64_t http_ms = 3000;
  int64_t target_ready_ms = 30000;
  int64_t route_live_ms = 10000;
  int64_t reconnect_ms = 30000;
  int64_t reload_command_ms = 60000;
  // Database waits of migrate/rollback: how long a statement waits for a row or table lock another
  // transaction holds (PostgreSQL lock_timeout), and how long any one statement may run
  // (statement_timeout; bounds a copy's COPY too, so it is generous).
  int64_t db_lock_ms = 10000;
  int64_t db_statement_ms = 900000;
};

struct Config {
  std::string path;  // where it was loaded from
  DatabaseConfig database;
  std::vector<ClusterConfig> clusters;
  ProxyConfig proxy;
  SessionsConfig sessions;
  JournalConfig journal;
  TimeoutsConfig timeouts;
  std::map<std::string, TenantConfig> tenants;
  double rebalance_tolerance = 0.10;  // fraction of the mean device count

  const ClusterConfig* FindCluster(const std::string& id) const;
  // Comma-separated list of cluster ids, for error hints.
  std::string ClusterIds() const;
};

// Parses YAML text. `origin` names the source in messages.
StatusOr<Config> ParseConfig(const std::string& yaml_text, const std::string& origin);
// Reads and parses a file.
StatusOr<Config> LoadConfig(const std::string& path);
// The path to use: explicit flag, else $HEADSHIFT_CONFIG, else ./headshift.yaml.
std::string DefaultConfigPath(const std::string& flag_value);

}  // namespace headshift
