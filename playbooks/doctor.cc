#include "playbooks/doctor.h"

#include <fcntl.h>
#include <linux/capability.h>
#include <linux/nsfs.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstring>
#include <map>
#include <sstream>

#include <spdlog/spdlog.h>

#include "common/pg.h"
#include "controlplane/headscale_client.h"
#include "dataplane/kernel_probe.h"
#include "migrate/schema_profile.h"
#include "proxycfg/haproxy_runtime_client.h"

namespace headshift {

int DoctorReport::ExitCode() const {
  bool priv_fail = false, other_fail = false;
  for (const auto& c : checks) {
    if (c.ok) continue;
    (c.privilege ? priv_fail : other_fail) = true;
  }
  return priv_fail ? 5 : other_fail ? 1 : 0;
}

nlohmann::json DoctorReport::ToJson() const {
  nlohmann::json arr = nlohmann::json::array();
  for (const auto& c : checks) {
    arr.push_back({{"name", c.name}, {"ok", c.ok}, {"privilege", c.privilege}, {"detail", c.detail},
                   {"hint", c.ok ? "" : c.hint}});
  }
  int failed = 0;
  for (const auto& c : checks) failed += c.ok ? 0 : 1;
  return {{"checks", arr}, {"failed", failed}, {"ok", failed == 0}};
}

std::string DoctorReport::ToText() const {
  std::ostringstream o;
  for (const auto& c : checks) {
    o << (c.ok ? "  OK    " : "  FAIL  ") << c.name << ": " << c.detail << "\n";
    if (!c.ok && !c.hint.empty()) o << "        fix: " << c.hint << "\n";
  }
  int failed = 0;
  for (const auto& c : checks) failed += c.ok ? 0 : 1;
  o << (failed == 0 ? "all checks passed\n" : std::to_string(failed) + " check(s) failed\n");
  return o.str();
}

DoctorCheck CheckCapNetAdmin() {
  DoctorCheck c{"cap_net_admin", false, true, "", ""};
  __user_cap_header_struct hdr{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2]{};
  if (syscall(SYS_capget, &hdr, data) != 0) {
    c.detail = std::string("capget failed: ") + std::strerror(errno);
  } else {
    c.ok = (data[CAP_NET_ADMIN / 32].effective & (1u << (CAP_NET_ADMIN % 32))) != 0;
    c.detail = c.ok ? "CAP_NET_ADMIN is effective" : "CAP_NET_ADMIN is not effective";
  }
  c.hint = "run as root, or grant it: setcap cap_net_admin,cap_sys_admin+ep $(command -v headshift)";
  return c;
}

DoctorCheck CheckNetns(const std::string& host, const std::string& netns) {
  DoctorCheck c{"netns[" + host + "]", false, false, "", ""};
  if (netns.empty()) {
    c.ok = true;
    c.detail = "uses headshift's own network namespace";
    return c;
  }
  std::string path = netns.find('/') == std::string::npos ? "/run/netns/" + netns : netns;
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    c.detail = "cannot open " + path + ": " + std::strerror(errno);
    c.hint = "create it (ip netns add NAME) or fix sessions.hosts[].netns";
    return c;
  }
  int type = ::ioctl(fd, NS_GET_NSTYPE);
  ::close(fd);
  if (type != CLONE_NEWNET) {
    c.detail = path + " is not a network namespace";
    c.hint = "point sessions.hosts[].netns at /run/netns/NAME or /proc/PID/ns/net";
    return c;
  }
  c.ok = true;
  c.detail = path + " is a network namespace";
  return c;
}

DoctorCheck CheckDatabase(const std::string& label, const std::string& dsn, int64_t timeout_ms,
                          const ClusterColumnExpectation& expect) {
  DoctorCheck c{"database[" + label + "]", false, false, "", ""};
  // The DSN is logged for debugging (host, port, dbname); the redacting sink masks its password.
  spdlog::debug("doctor: connecting to database[{}] with DSN '{}'", label, dsn);
  auto conn = PgConn::Connect(dsn, timeout_ms);
  if (!conn.ok()) {
    c.detail = conn.status().message();
    c.hint = conn.status().hint();
    return c;
  }
  const bool stock = expect.column.empty();
  // The column looked for: the cluster column, or (stock) the fork's column that must not be there.
  const std::string column = stock ? expect.forbidden : expect.column;
  auto r = (*conn)->Exec(
      "SELECT t.table_name, it.table_name IS NOT NULL, c.data_type FROM (VALUES ('users'),('nodes'),('pre_auth_keys')) "
      "AS t(table_name) "
      "LEFT JOIN information_schema.tables it ON it.table_name = t.table_name AND it.table_schema = current_schema() "
      "LEFT JOIN information_schema.columns c ON c.table_name = t.table_name AND c.table_schema = current_schema() "
      "AND c.column_name = $1 ORDER BY 1",
      {column});
  if (!r.ok()) {
    c.detail = r.status().message();
    return c;
  }
  std::string missing_tables, without, with;
  for (int i = 0; i < r->rows(); ++i) {
    std::string t = r->Get(i, 0);
    if (r->Get(i, 1) != "t") {
      missing_tables += (missing_tables.empty() ? "" : ", ") + t;
    } else if (r->IsNull(i, 2)) {
      without += (without.empty() ? "" : ", ") + t;
    } else {
      with += (with.empty() ? "" : ", ") + t + "." + column + " " + r->Get(i, 2);
    }
  }
  std::string version;
  auto has_versions = (*conn)->Exec("SELECT to_regclass('database_versions') IS NOT NULL");
  if (has_versions.ok() && has_versions->Get(0, 0) == "t") {  // headscale >= 0.29 records its version
    auto v = (*conn)->Exec("SELECT version FROM database_versions ORDER BY id DESC LIMIT 1");
    if (v.ok() && v->rows() > 0) version = "; headscale " + v->Get(0, 0) + " (database_versions)";
  }
  if (!missing_tables.empty()) {
    c.detail = "connected, but headscale tables are missing: " + missing_tables;
    c.hint = "point the DSN at the headscale database (run headscale once to create its schema)";
  } else if (stock && !with.empty()) {
    c.detail = "connected, but database.cluster_column is none and the tables have a cluster column: " + with;
    c.hint = "this is the multi-cluster fork's schema: remove database.cluster_column: none (or set it to " + column +
             ") so a copy rewrites " + column;
  } else if (stock) {
    c.ok = true;
    c.detail = "connected; " + std::string(migrate::kStockLayoutLabel) + version;
  } else if (!without.empty()) {
    c.detail = "connected, but no " + column + " column on: " + without;
    c.hint = "stock headscale has no cluster column (one database per node): set database.layout: split and "
             "database.cluster_column: none; for the multi-cluster fork add " + column +
             " (TEXT or integer) to users, nodes, pre_auth_keys";
  } else {
    c.ok = true;
    c.detail = "connected; " + with + version;
  }
  return c;
}

std::vector<DoctorCheck> CheckNoiseKeys(const Config& config) {
  std::vector<DoctorCheck> out;
  std::map<std::string, std::vector<std::string>> by_key;  // key -> cluster ids
  for (const auto& cl : config.clusters) {
    DoctorCheck c{"control_plane[" + cl.id + "]", false, false, "", ""};
    HeadscaleClient client(cl.control_url, "", config.timeouts.http_ms);
    auto key = client.NoiseKey();
    if (!key.ok()) {
      c.detail = key.status().message();
      c.hint = key.status().hint().empty() ? "check clusters[].control_url and that headscale is running"
                                           : key.status().hint();
    } else {
      c.ok = true;
      c.detail = cl.control_url + "/key answers " + *key;
      by_key[*key].push_back(cl.id);
    }
    out.push_back(c);
    if (!cl.api_key.empty()) {
      DoctorCheck api{"control_plane_api[" + cl.id + "]", false, false, "", ""};
      auto key_value = ResolveSecret(cl.api_key, "clusters[" + cl.id + "].api_key");
      if (!key_value.ok()) {
        api.detail = key_value.status().message();
        api.hint = key_value.status().hint();
      } else {
        HeadscaleClient authed(cl.control_url, *key_value, config.timeouts.http_ms);
        auto nodes = authed.ListNodes("");
        api.ok = nodes.ok();
        api.detail = nodes.ok() ? "API key accepted; " + std::to_string(nodes->size()) + " nodes served"
                                : nodes.status().message();
        api.hint = nodes.ok() ? "" : nodes.status().hint();
      }
      out.push_back(api);
    }
  }
  DoctorCheck same{"noise_keys", false, false, "", ""};
  if (by_key.size() <= 1) {
    same.ok = !by_key.empty();
    same.detail = by_key.empty() ? "no control plane answered /key" : "all clusters share one Noise public key";
    same.hint = "fix the control planes above";
  } else {
    std::string d = "clusters report different Noise keys:";
    for (const auto& [k, ids] : by_key) {
      d += " [";
      for (size_t i = 0; i < ids.size(); ++i) d += (i ? "," : "") + ids[i];
      d += "] " + k + ";";
    }
    same.detail = d;
    same.hint = "give every headscale node the same noise.private_key_path file; clients moved to a node with "
                "another key fail the Noise handshake (research/headscale.md §4)";
  }
  out.push_back(same);
  return out;
}

DoctorCheck CheckProxy(const Config& config) {
  DoctorCheck c{"proxy[" + std::string(ProxyKindName(config.proxy.kind)) + "]", false, false, "", ""};
  if (config.proxy.kind == ProxyKind::kFleet) {
    // Nothing on this host to check: each proxy host runs its own `headshift doctor --proxy-host`
    // (the fleet playbook's preflight does).
    c.ok = true;
    c.detail = "routes and sessions live on the proxy hosts; run `headshift doctor --proxy-host` there (the playbook does)";
    return c;
  }
  if (config.proxy.kind == ProxyKind::kHaproxy) {
    const auto& h = config.proxy.haproxy;
    HaproxyRuntimeClient runtime(h.runtime_socket, config.timeouts.http_ms);
    auto entries = runtime.ShowMap(h.map_file);
    if (!entries.ok()) {
      c.detail = entries.status().message();
      c.hint = "add `stats socket " + h.runtime_socket + " level admin` to haproxy.cfg's global section and use the "
               "map in `use_backend %[req.hdr(host),lower,map(" + h.map_file + ")]`";
      return c;
    }
    c.ok = true;
    c.detail = "runtime socket " + h.runtime_socket + " answers; map " + h.map_file + " has " +
               std::to_string(entries->size()) + " entries";
    return c;
  }
  const auto& t = config.proxy.traefik;
  if (::access(t.directory.c_str(), W_OK) != 0) {
    c.detail = "provider directory " + t.directory + " is not writable: " + std::strerror(errno);
    c.hint = "create it and make it writable, and point Traefik's providers.file.directory at it";
    return c;
  }
  if (t.api_url.empty()) {
    c.ok = true;
    c.detail = "directory " + t.directory + " writable; no api_url, so routes cannot be proven live";
    return c;
  }
  HttpClient http;
  HttpRequestOptions o;
  o.timeout_ms = config.timeouts.http_ms;
  o.ca_file = t.api_tls.ca_file;
  o.insecure_skip_verify = t.api_tls.insecure_skip_verify;
  if (!t.api_auth.bearer_token.empty()) {
    auto tok = ResolveSecret(t.api_auth.bearer_token, "proxy.traefik.api_auth.bearer_token");
    if (!tok.ok()) {
      c.detail = tok.status().message();
      return c;
    }
    o.bearer_token = *tok;
  } else if (!t.api_auth.basic_user.empty()) {
    auto pw = ResolveSecret(t.api_auth.basic_password, "proxy.traefik.api_auth.basic_password");
    if (!pw.ok()) {
      c.detail = pw.status().message();
      return c;
    }
    o.basic_user = t.api_auth.basic_user;
    o.basic_password = *pw;
  }
  auto r = http.Get(t.api_url + "/api/overview", o);
  if (!r.ok()) {
    c.detail = r.status().message();
    c.hint = "enable Traefik's API (api: {}) on an entry point headshift can reach";
  } else if (r->status == 401 || r->status == 403) {
    c.detail = "Traefik API refused the credentials (HTTP " + std::to_string(r->status) + ")";
    c.hint = "check proxy.traefik.api_auth";
  } else if (r->status != 200) {
    c.detail = "Traefik API answered HTTP " + std::to_string(r->status);
  } else {
    c.ok = true;
    c.detail = "directory " + t.directory + " writable; API " + t.api_url + " answers";
  }
  return c;
}

DoctorReport RunDoctor(const Config* config, bool proxy_host) {
  DoctorReport rep;
  rep.checks.push_back(CheckCapNetAdmin());
  {
    DoctorCheck k{"sock_destroy", false, true, "", ""};
    Status st = ProbeSockDestroy();
    k.ok = st.ok();
    k.detail = st.ok() ? "SOCK_DESTROY reset a probe connection in a throwaway network namespace" : st.message();
    k.hint = st.hint();
    rep.checks.push_back(k);
  }
  if (!config) return rep;
  for (const auto& h : config->sessions.hosts) {
    rep.checks.push_back(CheckNetns(h.name, h.netns));
    if (!h.conntrack_netns.empty()) rep.checks.push_back(CheckNetns(h.name + ".conntrack", h.conntrack_netns));
  }
  if (proxy_host) {
    rep.checks.push_back(CheckProxy(*config));
    return rep;
  }
  ClusterColumnExpectation expect;
  if (auto profile = migrate::LoadConfiguredProfile(config->database); !profile.ok()) {
    rep.checks.push_back({"schema_profile", false, false, profile.status().message(), profile.status().hint()});
  } else {
    expect.column = profile->cluster_column;
    expect.forbidden = profile->forbidden_cluster_column;
  }
  auto check_dsn = [&](const std::string& label, const SecretRef& ref) {
    auto dsn = ResolveDsn(ref, label);
    if (!dsn.ok()) {
      rep.checks.push_back({"database[" + label + "]", false, false, dsn.status().message(), dsn.status().hint()});
      return;
    }
    rep.checks.push_back(CheckDatabase(label, *dsn, config->timeouts.db_connect_ms, expect));
  };
  if (config->database.layout == DbLayout::kShared) {
    check_dsn("shared", config->database.dsn);
  } else {
    for (const auto& cl : config->clusters) check_dsn("cluster " + cl.id, cl.dsn);
  }
  for (auto& c : CheckNoiseKeys(*config)) rep.checks.push_back(std::move(c));
  rep.checks.push_back(CheckProxy(*config));
  return rep;
}

}  // namespace headshift
