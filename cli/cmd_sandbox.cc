// `headshift sandbox up|down|status|reset-stats`: the embedded lab (sandbox/lab.h). Needs no config;
// `up` writes one for the lab at <state-dir>/headshift.yaml.
#include <signal.h>

#include <sstream>

#include "cli/command.h"
#include "sandbox/lab.h"

namespace headshift::cli {
namespace {

using sandbox::LabOptions;

struct SandboxFlags {
  LabOptions lab;
  std::vector<std::string> tenant_specs;
  std::string clusters = "3,4";
  std::string layout = "shared";
  std::string cluster_id_type = "bigint";
  std::string lookup = "per-request";
  std::string noise_keys = "same";
  bool no_reload_command = false;
  bool no_fleet = false;
  bool foreground = false;
  double timeout_s = 60;
  // status
  bool wait_connected = false;
  std::string tenant, on_cluster;
  double status_timeout_s = 30;
};

std::vector<std::string> Split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, sep)) out.push_back(item);
  return out;
}

std::string StateDir(const SandboxFlags& f) {
  return f.lab.state_dir.empty() ? sandbox::DefaultStateDir(f.lab.name) : f.lab.state_dir;
}

Status BuildOptions(SandboxFlags& f) {
  LabOptions& o = f.lab;
  o.clusters = Split(f.clusters, ',');
  if (f.layout == "shared") o.layout = DbLayout::kShared;
  else if (f.layout == "split") o.layout = DbLayout::kSplit;
  else return Status::BadInput("--layout '" + f.layout + "' is not one of shared, split");
  if (f.cluster_id_type == "bigint") o.cluster_id_type = sandbox::ClusterIdType::kBigint;
  else if (f.cluster_id_type == "text") o.cluster_id_type = sandbox::ClusterIdType::kText;
  else return Status::BadInput("--cluster-id-type '" + f.cluster_id_type + "' is not one of bigint, text");
  auto m = sandbox::ParseLookupMode(f.lookup);
  if (!m.ok()) return Status::BadInput("--lookup: " + m.status().message());
  o.lookup = *m;
  if (f.noise_keys != "same" && f.noise_keys != "different") {
    return Status::BadInput("--noise-keys '" + f.noise_keys + "' is not one of same, different");
  }
  o.different_noise_keys = f.noise_keys == "different";
  o.reload_command = !f.no_reload_command;
  o.fleet = !f.no_fleet;
  o.connected_timeout_ms = static_cast<int64_t>(f.timeout_s * 1000);
  for (const auto& spec : f.tenant_specs) {
    auto parts = Split(spec, ':');
    if (parts.empty() || parts.size() > 3) {
      return Status::BadInput("--tenant '" + spec + "' is not NAME[:CLUSTER[:DEVICES]]");
    }
    sandbox::LabTenant t;
    t.name = parts[0];
    if (parts.size() > 1) t.cluster = parts[1];
    if (parts.size() > 2) {
      try {
        t.devices = std::stoi(parts[2]);
      } catch (...) {
        return Status::BadInput("--tenant '" + spec + "': DEVICES is not a number");
      }
      if (t.devices < 0) return Status::BadInput("--tenant '" + spec + "': DEVICES must be >= 0");
    }
    o.tenants.push_back(t);
  }
  return sandbox::ValidateLabOptions(o);
}

void AddLabSelector(CLI::App* sub, SandboxFlags* f) {
  sub->add_option("--name", f->lab.name, "lab name (namespaces sandbox-<name>-*)")->default_val("lab");
  sub->add_option("--state-dir", f->lab.state_dir, "lab state dir (default /tmp/headshift-sandbox-<name>)");
  sub->fallthrough();  // global flags (--json, --log-level) may follow the subcommand
}

std::string UpText(const nlohmann::json& lab) {
  std::ostringstream o;
  o << "sandbox lab '" << lab["name"].get<std::string>() << "' is up (state " << lab["state_dir"].get<std::string>()
    << ")\n  config:   " << lab["config"].get<std::string>() << "\n";
  for (auto& [id, c] : lab["clusters"].items()) {
    o << "  cluster " << id << ": " << c["control_url"].get<std::string>() << "  (stand-in, " << c.value("lookup", "")
      << ", netns " << c["netns"].get<std::string>() << ")\n";
  }
  o << "  edge:     HAProxy in netns " << lab["edge"]["netns"].get<std::string>() << ", VIP "
    << lab["edge"]["vip"].get<std::string>() << ":80/443, map " << lab["edge"].value("map_file", "") << "\n";
  if (lab.contains("lb") && lab["lb"].is_object()) o << "  lb:       netns " << lab["lb"]["netns"].get<std::string>() << " (DNAT + masquerade)\n";
  for (const auto& t : lab["tenants"]) {
    o << "  tenant " << t["name"].get<std::string>() << ": " << t["devices"] << " devices on cluster "
      << t["cluster"].get<std::string>() << " (" << t["host"].get<std::string>() << ")\n";
  }
  o << "  fleet:    " << lab["fleet"]["clients"] << " clients in " << lab["fleet"]["shards"] << " shard(s), all connected\n";
  return o.str();
}

std::string StatusText(const nlohmann::json& s) {
  std::ostringstream o;
  if (!s.value("up", false)) return "no sandbox lab\n";
  o << "sandbox lab '" << s["name"].get<std::string>() << "': " << (s["healthy"].get<bool>() ? "healthy" : "A PROCESS DIED")
    << ", " << s["fleet"]["connected"] << "/" << s["fleet"]["clients"] << " clients connected\n";
  for (auto& [name, t] : s["tenants"].items()) {
    o << "  " << name << ": " << t["connected"] << "/" << t["clients"] << " connected";
    for (auto& [c, n] : t["connected_by_cluster"].items()) o << "  [cluster " << c << ": " << n << "]";
    o << "  disconnected " << t["disconnected_clients"] << "  rejections " << t["rejections"] << "  interruption ms p50/p99/max "
      << t["interruption_ms"]["p50"] << "/" << t["interruption_ms"]["p99"] << "/" << t["interruption_ms"]["max"] << "\n";
  }
  return o.str();
}

const CommandRegistrar kSandbox([](CLI::App& app, const auto& bind) {
  auto* sb = app.add_subcommand("sandbox", "the embedded lab: PostgreSQL, HAProxy, headscale stand-ins, a client fleet");
  sb->require_subcommand(1);
  sb->fallthrough();
  static SandboxFlags storage;  // CLI11 binds to storage that outlives parsing
  SandboxFlags* f = &storage;

  auto* up = sb->add_subcommand("up", "bring a lab up (replacing a previous one of the same name) and write its headshift config");
  AddLabSelector(up, f);
  up->add_option("--tenants", f->lab.tenant_count, "number of tenants hsa, hsb, … (spread over the clusters)")->default_val(3);
  up->add_option("--tenant", f->tenant_specs, "NAME[:CLUSTER[:DEVICES]] (repeatable; replaces --tenants)");
  up->add_option("--devices", f->lab.devices, "devices per tenant")->default_val(70);
  up->add_option("--clusters", f->clusters, "cluster ids, comma-separated")->default_val("3,4");
  up->add_option("--layout", f->layout, "shared | split")->default_val("shared");
  up->add_option("--cluster-id-type", f->cluster_id_type, "bigint | text")->default_val("bigint");
  up->add_option("--lookup", f->lookup, "stand-in lookups: per-request | cached")->default_val("per-request");
  up->add_flag("--no-reload-command", f->no_reload_command, "write no reload_command for the clusters");
  up->add_flag("--reload-drops-sessions", f->lab.reload_drops_sessions,
               "the stand-ins' reload acts as a restart (drops every connection), like headscale >= 0.27's");
  up->add_option("--noise-keys", f->noise_keys, "same | different")->default_val("same");
  up->add_flag("--lb", f->lab.lb, "put a DNAT+masquerade namespace in front of the edge");
  up->add_option("--shared-nat-share", f->lab.shared_nat_share, "share of devices of each tenant pair behind one shared address")
      ->default_val(0.0);
  up->add_option("--https-share", f->lab.https_share, "share of clients dialing :443")->default_val(0.1);
  up->add_option("--clients-per-process", f->lab.clients_per_process, "fleet shard size")->default_val(10000);
  up->add_option("--keepalive-ms", f->lab.keepalive_ms, "stand-in keep-alive period")->default_val(1000);
  up->add_option("--disconnect-grace-ms", f->lab.disconnect_grace_ms, "stand-in wait before marking offline")->default_val(10000);
  up->add_flag("--no-fleet", f->no_fleet, "start no clients");
  up->add_option("--timeout", f->timeout_s, "seconds to wait for every client to connect")->default_val(60);
  up->add_flag("--foreground", f->foreground, "stay in the foreground; Ctrl-C takes the lab down");
  bind(up, [f](Context&) {
    CommandResult r;
    if (Status st = BuildOptions(*f); !st.ok()) return Fail(st);
    if (f->foreground) {
      sigset_t s;
      sigemptyset(&s);
      sigaddset(&s, SIGINT);
      sigaddset(&s, SIGTERM);
      pthread_sigmask(SIG_BLOCK, &s, nullptr);
    }
    auto info = sandbox::LabUp(f->lab);
    if (!info.ok()) return Fail(info.status());
    r.json = info->json;
    r.text = UpText(info->json);
    if (f->foreground) {
      fprintf(stderr, "%s(foreground: Ctrl-C takes the lab down)\n", r.text.c_str());
      sigset_t s;
      sigemptyset(&s);
      sigaddset(&s, SIGINT);
      sigaddset(&s, SIGTERM);
      int sig = 0;
      sigwait(&s, &sig);
      auto down = sandbox::LabDown(f->lab.name, info->state_dir);
      if (!down.ok()) return Fail(down.status());
      r.json = {{"down", *down}};
      r.text = "sandbox lab '" + f->lab.name + "' removed\n";
    }
    return r;
  });

  auto* down = sb->add_subcommand("down", "remove a lab: processes, namespaces, veths, state dir");
  AddLabSelector(down, f);
  bind(down, [f](Context&) {
    CommandResult r;
    auto res = sandbox::LabDown(f->lab.name, StateDir(*f));
    if (!res.ok()) return Fail(res.status());
    r.json = {{"name", f->lab.name}, {"removed", *res}};
    r.text = "sandbox lab '" + f->lab.name + "' removed (" + std::to_string((*res)["netns"].size()) + " namespaces, " +
             std::to_string((*res)["processes"].size()) + " processes)\n";
    return r;
  });

  auto* status = sb->add_subcommand("status", "lab processes and the fleet's per-tenant summary (fresh as of the call)");
  AddLabSelector(status, f);
  status->add_flag("--wait-connected", f->wait_connected, "wait until every client is connected");
  status->add_option("--tenant", f->tenant, "with --on-cluster: wait until all of TENANT's clients are connected there");
  status->add_option("--on-cluster", f->on_cluster, "cluster id for --tenant");
  status->add_option("--timeout", f->status_timeout_s, "seconds to wait")->default_val(30);
  bind(status, [f](Context&) {
    if (f->tenant.empty() != f->on_cluster.empty()) {
      return Fail(Status::BadInput("--tenant and --on-cluster go together"));
    }
    sandbox::LabQuery q;
    q.wait_connected = f->wait_connected;
    q.tenant = f->tenant;
    q.on_cluster = f->on_cluster;
    q.timeout_ms = static_cast<int64_t>(f->status_timeout_s * 1000);
    auto res = sandbox::LabStatus(StateDir(*f), q);
    CommandResult r;
    r.status = res.status;
    r.json = res.json;
    r.text = StatusText(res.json);
    return r;
  });

  auto* reset = sb->add_subcommand("reset-stats", "zero the fleet's counters (disconnects, rejections, interruptions)");
  AddLabSelector(reset, f);
  bind(reset, [f](Context&) {
    CommandResult r;
    if (Status st = sandbox::LabResetStats(StateDir(*f)); !st.ok()) return Fail(st);
    r.json = {{"reset", true}};
    r.text = "fleet counters reset\n";
    return r;
  });
});

}  // namespace
}  // namespace headshift::cli
