#include "common/config.h"

#include <cctype>
#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>

#include <yaml-cpp/yaml.h>

#include "common/config_reader.h"
#include "common/redact.h"

namespace headshift {
namespace {

using config_detail::CheckTemplate;
using config_detail::CheckUrl;
using config_detail::ConfigError;
using config_detail::MapReader;
using config_detail::Where;


HttpAuthConfig ParseAuth(MapReader m) {
  HttpAuthConfig a;
  a.basic_user = m.Str("basic_user", false);
  a.basic_password = m.Secret("basic_password", false);
  a.bearer_token = m.Secret("bearer_token", false);
  if (!a.basic_user.empty() && a.basic_password.empty()) {
    throw ConfigError{m.Key("basic_password") + ": required with basic_user" + Where(m.node())};
  }
  if (!a.bearer_token.empty() && !a.basic_user.empty()) {
    throw ConfigError{m.Key("bearer_token") + ": use basic auth or a bearer token, not both" + Where(m.node())};
  }
  m.Finish();
  return a;
}

Config ParseRoot(const YAML::Node& root) {
  Config c;
  MapReader r(root, "");

  {  // database
    MapReader m = r.Sub("database");
    std::string layout = m.Str("layout", true);
    if (layout == "shared") c.database.layout = DbLayout::kShared;
    else if (layout == "split") c.database.layout = DbLayout::kSplit;
    else throw ConfigError{m.Key("layout") + ": '" + layout + "' is not one of shared, split" + Where(m.Get("layout"))};
    c.database.dsn = m.Secret("dsn", c.database.layout == DbLayout::kShared);
    c.database.schema_profile = m.Str("schema_profile", false);
    c.database.cluster_column = m.Str("cluster_column", false);
    if (m.Has("cluster_column")) {
      const std::string& cc = c.database.cluster_column;
      bool ident = !cc.empty() && (std::isalpha(static_cast<unsigned char>(cc[0])) || cc[0] == '_');
      for (char ch : cc) ident = ident && (std::isalnum(static_cast<unsigned char>(ch)) || ch == '_');
      if (!ident) {
        throw ConfigError{m.Key("cluster_column") + ": '" + cc + "' is neither a column name nor " + kNoClusterColumn +
                          Where(m.Get("cluster_column"))};
      }
      if (c.database.NoClusterColumn() && c.database.layout != DbLayout::kSplit) {
        throw ConfigError{m.Key("cluster_column") + ": none (stock headscale, no cluster column) needs " +
                          m.Key("layout") + ": split (one database per cluster, the cluster is the DSN); the " +
                          DbLayoutName(c.database.layout) +
                          " layout tells clusters apart by that column, so set it to the column's name or remove it" +
                          Where(m.Get("cluster_column"))};
      }
    }
    m.Finish();
  }

  {  // clusters
    YAML::Node list = r.Get("clusters");
    if (!list) throw ConfigError{"clusters: required field is missing" + Where(root)};
    if (!list.IsSequence() || list.size() == 0) {
      throw ConfigError{"clusters: expected a non-empty list" + Where(list)};
    }
    std::set<std::string> ids, backends;
    for (size_t i = 0; i < list.size(); ++i) {
      MapReader m(list[i], "clusters[" + std::to_string(i) + "]");
      ClusterConfig cl;
      cl.id = m.Str("id", true);
      if (cl.id.empty()) throw ConfigError{m.Key("id") + ": must not be empty" + Where(list[i])};
      if (!ids.insert(cl.id).second) {
        throw ConfigError{m.Key("id") + ": cluster id '" + cl.id + "' is defined twice" + Where(m.Get("id"))};
      }
      cl.control_url = m.Str("control_url", true);
      CheckUrl(cl.control_url, m.Key("control_url"), m.Get("control_url"));
      cl.api_key = m.Secret("api_key", false);
      cl.upstream_url = m.Str("upstream_url", false, cl.control_url);
      CheckUrl(cl.upstream_url, m.Key("upstream_url"), m.Has("upstream_url") ? m.Get("upstream_url") : list[i]);
      cl.debug_url = m.Str("debug_url", false);
      if (!cl.debug_url.empty()) CheckUrl(cl.debug_url, m.Key("debug_url"), m.Get("debug_url"));
      cl.backend = m.Str("backend", true);
      if (!backends.insert(cl.backend).second) {
        throw ConfigError{m.Key("backend") + ": backend '" + cl.backend + "' is used by two clusters" +
                          Where(m.Get("backend"))};
      }
      cl.dsn = m.Secret("dsn", false);
      if (c.database.layout == DbLayout::kSplit && cl.dsn.empty()) {
        throw ConfigError{m.Key("dsn") + ": required in split layout; set dsn_env or dsn_file" + Where(list[i])};
      }
      if (c.database.layout == DbLayout::kShared && !cl.dsn.empty()) {
        throw ConfigError{m.Key("dsn_env") + ": per-cluster DSNs are only used in split layout" + Where(list[i])};
      }
      cl.reload_command = m.StrList("reload_command");
      cl.policy_file = m.Str("policy_file", false);
      cl.policy_reload_command = m.StrList("policy_reload_command");
      if (!cl.policy_file.empty() && cl.policy_reload_command.empty()) {
        throw ConfigError{m.Key("policy_reload_command") +
                          ": required with policy_file (headscale re-reads a policy file on SIGHUP), e.g. "
                          "[systemctl, kill, -s, HUP, headscale]" + Where(m.Get("policy_file"))};
      }
      if (cl.policy_file.empty() && !cl.policy_reload_command.empty()) {
        throw ConfigError{m.Key("policy_file") + ": policy_reload_command is set but policy_file is not" +
                          Where(m.Get("policy_reload_command"))};
      }
      cl.capacity = m.Int("capacity", 0, 0, INT64_MAX);
      cl.cached_nodes = m.Bool("cached_nodes", false);
      cl.reload_drops_sessions = m.Bool("reload_drops_sessions", true);
      if (m.Has("reload_drops_sessions") && cl.reload_command.empty()) {
        throw ConfigError{m.Key("reload_drops_sessions") +
                          ": set, but the cluster has no reload_command (the key says what that command costs)" +
                          Where(m.Get("reload_drops_sessions"))};
      }
      m.Finish();
      c.clusters.push_back(std::move(cl));
    }
  }

  {  // proxy
    MapReader m = r.Sub("proxy");
    std::string kind = m.Str("kind", true);
    if (kind == "traefik-file") {
      c.proxy.kind = ProxyKind::kTraefikFile;
      MapReader t = m.Sub("traefik");
      TraefikConfig& tc = c.proxy.traefik;
      tc.directory = t.Str("directory", true);
      tc.api_url = t.Str("api_url", false);
      if (!tc.api_url.empty()) CheckUrl(tc.api_url, t.Key("api_url"), t.Get("api_url"));
      if (t.Has("api_auth")) tc.api_auth = ParseAuth(t.Sub("api_auth"));
      if (t.Has("api_tls")) {
        MapReader s = t.Sub("api_tls");
        tc.api_tls.ca_file = s.Str("ca_file", false);
        tc.api_tls.insecure_skip_verify = s.Bool("insecure_skip_verify", false);
        s.Finish();
      }
      tc.router_template = t.Str("router_template", false, tc.router_template);
      CheckTemplate(tc.router_template, t.Key("router_template"), t.node());
      tc.host_template = t.Str("host_template", false, tc.host_template);
      CheckTemplate(tc.host_template, t.Key("host_template"), t.node());
      tc.entry_points = t.StrList("entry_points");
      tc.cert_resolver = t.Str("cert_resolver", false);
      tc.tls = t.Bool("tls", !tc.cert_resolver.empty());
      tc.tcp_passthrough = t.Bool("tcp_passthrough", false);
      tc.schema_version = static_cast<int>(t.Int("schema_version", 3, 2, 3));
      tc.throttle_ms = t.Int("throttle_ms", 2000, 0, 600000);
      tc.file_prefix = t.Str("file_prefix", false, tc.file_prefix);
      t.Finish();
      if (m.Has("haproxy")) throw ConfigError{m.Key("haproxy") + ": not used with kind traefik-file" + Where(m.Get("haproxy"))};
    } else if (kind == "haproxy") {
      c.proxy.kind = ProxyKind::kHaproxy;
      MapReader h = m.Sub("haproxy");
      c.proxy.haproxy.runtime_socket = h.Str("runtime_socket", true);
      c.proxy.haproxy.map_file = h.Str("map_file", true);
      c.proxy.haproxy.host_template = h.Str("host_template", false, c.proxy.haproxy.host_template);
      CheckTemplate(c.proxy.haproxy.host_template, h.Key("host_template"), h.node());
      h.Finish();
      if (m.Has("traefik")) throw ConfigError{m.Key("traefik") + ": not used with kind haproxy" + Where(m.Get("traefik"))};
    } else if (kind == "fleet") {
      c.proxy.kind = ProxyKind::kFleet;
      for (const char* k : {"traefik", "haproxy"}) {
        if (m.Has(k)) {
          throw ConfigError{m.Key(k) + ": not used with kind fleet (each proxy host has its own config)" + Where(m.Get(k))};
        }
      }
    } else {
      throw ConfigError{m.Key("kind") + ": '" + kind + "' is not one of traefik-file, haproxy, fleet" + Where(m.Get("kind"))};
    }
    m.Finish();
  }

  if (r.Has("sessions")) {
    MapReader m = r.Sub("sessions");
    YAML::Node hosts = m.Get("hosts");
    std::set<std::string> names;
    if (hosts) {
      if (!hosts.IsSequence()) throw ConfigError{"sessions.hosts: expected a list" + Where(hosts)};
      for (size_t i = 0; i < hosts.size(); ++i) {
        MapReader h(hosts[i], "sessions.hosts[" + std::to_string(i) + "]");
        SessionHostConfig sh;
        sh.name = h.Str("name", true);
        if (!names.insert(sh.name).second) {
          throw ConfigError{h.Key("name") + ": session host '" + sh.name + "' is defined twice" + Where(h.Get("name"))};
        }
        sh.netns = h.Str("netns", false);
        YAML::Node ports = h.Get("ports");
        if (!ports) throw ConfigError{h.Key("ports") + ": required field is missing" + Where(hosts[i])};
        if (!ports.IsSequence() || ports.size() == 0) {
          throw ConfigError{h.Key("ports") + ": expected a non-empty list of ports" + Where(ports)};
        }
        for (size_t j = 0; j < ports.size(); ++j) {
          int64_t p = 0;
          if (!ports[j].IsScalar() || !YAML::convert<int64_t>::decode(ports[j], p) || p < 1 || p > 65535) {
            throw ConfigError{h.Key("ports") + "[" + std::to_string(j) + "]: expected a port 1-65535" + Where(ports[j])};
          }
          sh.ports.push_back(static_cast<uint16_t>(p));
        }
        sh.conntrack_netns = h.Str("conntrack_netns", false);
        h.Finish();
        c.sessions.hosts.push_back(std::move(sh));
      }
      if (c.proxy.kind == ProxyKind::kFleet && hosts.size() > 0) {
        throw ConfigError{"sessions.hosts: not used with proxy.kind fleet (each proxy host resets its own sessions "
                          "with `headshift sessions kill --snapshot-in`)" + Where(hosts)};
      }
    }
    c.sessions.allow_shared = m.Bool("allow_shared", false);
    c.sessions.reset_rate = m.Int("reset_rate", c.sessions.reset_rate, 0, 10000000);
    if (m.Has("pacing")) {
      auto p = ParseResetPacing(m.Str("pacing", false));
      if (!p.ok()) throw ConfigError{m.Key("pacing") + ": " + p.status().message() + Where(m.Get("pacing"))};
      c.sessions.pacing = *p;
    }
    if (m.Has("waves")) {
      MapReader w = m.Sub("waves");
      SessionWavesConfig& wc = c.sessions.waves;
      wc.first = w.Int("first", wc.first, 1, 1000000);
      wc.window_ms = w.Int("window_ms", wc.window_ms, 10, 600000);
      wc.back_fraction = w.Double("back_fraction", wc.back_fraction);
      if (wc.back_fraction <= 0 || wc.back_fraction > 1) {
        throw ConfigError{w.Key("back_fraction") + ": " + std::to_string(wc.back_fraction) +
                          " is out of range (0, 1]" + Where(w.Get("back_fraction"))};
      }
      wc.timeout_ms = w.Int("timeout_ms", wc.timeout_ms, 100, 3600000);
      if (wc.timeout_ms < wc.window_ms) {
        throw ConfigError{w.Key("timeout_ms") + ": " + std::to_string(wc.timeout_ms) + " is shorter than window_ms " +
                          std::to_string(wc.window_ms) + Where(w.Get("timeout_ms"))};
      }
      w.Finish();
    }
    m.Finish();
  }

  if (r.Has("journal")) {
    MapReader m = r.Sub("journal");
    c.journal.location = m.Str("location", false, "shared");
    if (c.journal.location != "shared" && c.journal.location != "target") {
      throw ConfigError{m.Key("location") + ": '" + c.journal.location + "' is not one of shared, target" +
                        Where(m.Get("location"))};
    }
    m.Finish();
  }
  if (c.database.layout == DbLayout::kSplit && c.journal.location == "shared" && c.database.dsn.empty()) {
    c.journal.location = "target";  // no shared DB: the journal lives in the target cluster's database
  }

  if (r.Has("timeouts")) {
    MapReader m = r.Sub("timeouts");
    constexpr int64_t kHour = 3600 * 1000;
    c.timeouts.db_connect_ms = m.Int("db_connect_ms", c.timeouts.db_connect_ms, 1, kHour);
    c.timeouts.http_ms = m.Int("http_ms", c.timeouts.http_ms, 1, kHour);
    c.timeouts.target_ready_ms = m.Int("target_ready_ms", c.timeouts.target_ready_ms, 1, kHour);
    c.timeouts.route_live_ms = m.Int("route_live_ms", c.timeouts.route_live_ms, 1, kHour);
    c.timeouts.reconnect_ms = m.Int("reconnect_ms", c.timeouts.reconnect_ms, 1, kHour);
    c.timeouts.reload_command_ms = m.Int("reload_command_ms", c.timeouts.reload_command_ms, 1, kHour);
    c.timeouts.db_lock_ms = m.Int("db_lock_ms", c.timeouts.db_lock_ms, 1, kHour);
    c.timeouts.db_statement_ms = m.Int("db_statement_ms", c.timeouts.db_statement_ms, 1, 24 * kHour);
    m.Finish();
  }
  if (r.Has("rebalance")) {
    MapReader m = r.Sub("rebalance");
    c.rebalance_tolerance = m.Double("tolerance", c.rebalance_tolerance);
    if (c.rebalance_tolerance < 0 || c.rebalance_tolerance > 1) {
      throw ConfigError{m.Key("tolerance") + ": must be between 0 and 1" + Where(m.Get("tolerance"))};
    }
    m.Finish();
  }
  if (r.Has("tenants")) {
    YAML::Node tn = r.Get("tenants");
    if (!tn.IsMap()) throw ConfigError{"tenants: expected a mapping tenant name -> settings" + Where(tn)};
    for (auto it = tn.begin(); it != tn.end(); ++it) {
      std::string name = it->first.as<std::string>();
      MapReader m(it->second, "tenants." + name);
      TenantConfig t;
      t.extra_cidrs = m.StrList("extra_cidrs");
      t.allowed_clusters = m.StrList("allowed_clusters");
      // Dangling reference: every cluster named must be defined under clusters.
      for (size_t i = 0; i < t.allowed_clusters.size(); ++i) {
        if (!c.FindCluster(t.allowed_clusters[i])) {
          throw ConfigError{m.Key("allowed_clusters") + "[" + std::to_string(i) + "]: cluster '" +
                            t.allowed_clusters[i] + "' is not defined under clusters (defined: " + c.ClusterIds() +
                            ")" + Where(m.Get("allowed_clusters"))};
        }
      }
      m.Finish();
      c.tenants[name] = std::move(t);
    }
  }
  r.Finish();
  return c;
}

}  // namespace

const char* DbLayoutName(DbLayout l) { return l == DbLayout::kShared ? "shared" : "split"; }
const char* ResetPacingName(ResetPacing p) { return p == ResetPacing::kAdaptive ? "adaptive" : "fixed"; }
StatusOr<ResetPacing> ParseResetPacing(const std::string& s) {
  if (s == "adaptive") return ResetPacing::kAdaptive;
  if (s == "fixed") return ResetPacing::kFixed;
  return Status::BadInput("pacing '" + s + "' is not one of adaptive, fixed");
}
const char* ProxyKindName(ProxyKind k) {
  switch (k) {
    case ProxyKind::kHaproxy: return "haproxy";
    case ProxyKind::kFleet: return "fleet";
    case ProxyKind::kTraefikFile: break;
  }
  return "traefik-file";
}

const ClusterConfig* Config::FindCluster(const std::string& id) const {
  for (const auto& c : clusters) {
    if (c.id == id) return &c;
  }
  return nullptr;
}

std::string Config::ClusterIds() const {
  std::string out;
  for (const auto& c : clusters) out += (out.empty() ? "" : ", ") + c.id;
  return out;
}

StatusOr<Config> ParseConfig(const std::string& yaml_text, const std::string& origin) {
  try {
    YAML::Node root = YAML::Load(yaml_text);
    if (!root || root.IsNull()) return Status::BadInput(origin + ": config is empty");
    Config c = ParseRoot(root);
    c.path = origin;
    return c;
  } catch (const ConfigError& e) {
    return Status::BadInput(origin + ": " + e.message, "see playbooks/examples/headshift.yaml");
  } catch (const YAML::Exception& e) {
    return Status::BadInput(origin + ": invalid YAML at line " + std::to_string(e.mark.line + 1) + ", column " +
                                std::to_string(e.mark.column + 1) + ": " + e.msg,
                            "fix the YAML syntax");
  }
}

StatusOr<Config> LoadConfig(const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    return Status::BadInput("cannot read config file " + path,
                            "pass --config FILE or set HEADSHIFT_CONFIG (example: playbooks/examples/headshift.yaml)");
  }
  std::stringstream ss;
  ss << in.rdbuf();
  return ParseConfig(ss.str(), path);
}

std::string DefaultConfigPath(const std::string& flag_value) {
  if (!flag_value.empty()) return flag_value;
  if (const char* env = std::getenv("HEADSHIFT_CONFIG"); env && *env) return env;
  return "headshift.yaml";
}

}  // namespace headshift
