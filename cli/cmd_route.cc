// `headshift route show [TENANT]`, `route set TENANT CLUSTER`, `route adopt TENANT...|--all`:
// single-step route commands over proxycfg's RouteBackend (proxycfg/route_backend.h).
#include <chrono>
#include <memory>
#include <filesystem>
#include <sstream>

#include "cli/command.h"
#include "dataplane/cidr.h"
#include "dataplane/session_selector.h"
#include "dataplane/session_snapshot.h"
#include "dataplane/sessions.h"
#include "proxycfg/route_backend.h"
#include "proxycfg/traefik_file_routes.h"

namespace headshift::cli {
namespace {

struct RouteArgs {
  std::string tenant;
  std::string cluster;
  bool create = false;
  bool no_wait = false;
  std::vector<std::string> tenants;
  bool all = false;
  // set --snapshot-out: the tenant's sessions on this host, recorded right before the switch
  std::string snapshot_out;
  std::vector<std::string> clients, ports;
};

// A fleet's proxy host records its own kernel's sessions of the tenant immediately before its route
// switches (playbooks/ansible): a device that connects between a separate snapshot and the switch
// would reach the source and never be reset. The window here is the few ms between two calls.
// A snapshot taken by an earlier run is kept when the route already points at the target (the
// sessions made since went through the new route).
StatusOr<nlohmann::json> SnapshotBeforeSwitch(const RouteArgs& a, const std::optional<Route>& current) {
  // The selection is checked first, also when an earlier snapshot is kept: bad input is always refused.
  auto ports = ParsePorts(a.ports);
  if (!ports.ok()) return ports.status();
  auto clients = ParseCidrList(a.clients);
  if (!clients.ok()) return clients.status();
  SessionSelector sel;
  sel.ports = *ports;
  sel.clients = *clients;
  HS_RETURN_IF_ERROR(sel.Validate(true));
  if (current && current->cluster_id == a.cluster && std::filesystem::exists(a.snapshot_out)) {
    return nlohmann::json{{"file", a.snapshot_out}, {"kept", true}};
  }
  auto table = SessionTable::Open({"", "", "", *ports}, SessionTable::Access::kReadOnly, TerminatorOptions{});
  if (!table.ok()) return table.status();
  auto snap = (*table)->Snapshot(sel);
  if (!snap.ok()) return snap.status();
  size_t n = snap->sockets.size();
  HS_RETURN_IF_ERROR(SaveSnapshots(a.snapshot_out, {*snap}));
  return nlohmann::json{{"file", a.snapshot_out}, {"kept", false}, {"sessions", n}};
}

std::string Describe(const std::optional<std::string>& cluster, const std::optional<std::string>& backend) {
  if (!backend) return "(no route)";
  if (cluster) return "cluster " + *cluster + " (" + *backend + ")";
  return *backend + " (no configured cluster)";
}

std::string RouteTable(const std::vector<Route>& routes) {
  size_t w_t = 6, w_c = 7, w_b = 7;
  for (const auto& r : routes) {
    w_t = std::max(w_t, r.tenant.size());
    w_c = std::max(w_c, r.cluster_id.size());
    w_b = std::max(w_b, r.backend.size());
  }
  auto pad = [](const std::string& s, size_t w) { return s + std::string(w - s.size() + 2, ' '); };
  std::ostringstream o;
  o << pad("TENANT", w_t) << pad("CLUSTER", w_c) << pad("BACKEND", w_b) << "SOURCE\n";
  for (const auto& r : routes) {
    o << pad(r.tenant, w_t) << pad(r.cluster_id.empty() ? "-" : r.cluster_id, w_c) << pad(r.backend, w_b) << r.source
      << (r.managed ? "" : "  (not managed: run `headshift route adopt " + r.tenant + "`)") << "\n";
    if (!r.detail.empty()) o << "  note: " << r.detail << "\n";
  }
  return o.str();
}

CommandResult RunShow(Context& ctx, const RouteArgs& a) {
  auto cfg = ctx.config();
  if (!cfg.ok()) return Fail(cfg.status());
  auto backend = MakeRouteBackend(**cfg);
  if (!backend.ok()) return Fail(backend.status());
  std::vector<Route> routes;
  if (!a.tenant.empty()) {
    auto r = (*backend)->Get(a.tenant);
    if (!r.ok()) return Fail(r.status());
    if (!r->has_value()) {
      return Fail(Status::BadInput("tenant '" + a.tenant + "' has no route in the " + (*backend)->Kind() +
                                       " configuration",
                                   "list routed tenants with `headshift route show`"));
    }
    routes.push_back(**r);
  } else {
    auto l = (*backend)->List();
    if (!l.ok()) return Fail(l.status());
    routes = std::move(l).value();
  }
  CommandResult res;
  nlohmann::json arr = nlohmann::json::array();
  for (const auto& r : routes) arr.push_back(r.ToJson());
  res.json = {{"proxy", (*backend)->Kind()}, {"routes", arr}};
  res.text = routes.empty() ? "no tenant routes\n" : RouteTable(routes);
  return res;
}

CommandResult RunSet(Context& ctx, const RouteArgs& a) {
  auto cfg = ctx.config();
  if (!cfg.ok()) return Fail(cfg.status());
  auto made = MakeRouteBackend(**cfg);
  if (!made.ok()) return Fail(made.status());
  RouteBackend& backend = **made;
  // Bad input is reported before anything touches the proxy.
  if (!(*cfg)->FindCluster(a.cluster)) {
    return Fail(Status::BadInput("unknown cluster '" + a.cluster + "'",
                                 "use one of the configured clusters: " + (*cfg)->ClusterIds()));
  }
  if (Status st = backend.CheckOwnership(a.tenant); !st.ok()) return Fail(st);
  nlohmann::json snapshot;
  if (!a.snapshot_out.empty()) {
    if (a.clients.empty() || a.ports.empty()) {
      return Fail(Status::BadInput("--snapshot-out needs the tenant's client addresses and the proxy's ports",
                                   "pass --client ADDR (repeatable) and --port 80,443"));
    }
    auto current = backend.Get(a.tenant);
    if (!current.ok()) return Fail(current.status());
    auto snap = SnapshotBeforeSwitch(a, *current);
    if (!snap.ok()) return Fail(snap.status().WithContext("snapshot before the switch (nothing changed)"));
    snapshot = std::move(snap).value();
  } else if (!a.clients.empty() || !a.ports.empty()) {
    return Fail(Status::BadInput("--client/--port select the sessions of --snapshot-out", "add --snapshot-out FILE"));
  }
  auto change = a.create ? backend.Add(a.tenant, a.cluster) : backend.Set(a.tenant, a.cluster);
  if (!change.ok()) return Fail(change.status());

  CommandResult res;
  res.json = {{"tenant", a.tenant},
              {"from", change->previous_cluster ? nlohmann::json(*change->previous_cluster) : nlohmann::json(nullptr)},
              {"to", change->new_cluster},
              {"changed", change->changed},
              {"change", change->ToJson()}};
  if (!snapshot.is_null()) res.json["snapshot"] = snapshot;
  std::string line = "route " + a.tenant + ": " + Describe(change->previous_cluster, change->previous_backend) +
                     " -> " + Describe(change->new_cluster, change->new_backend) +
                     (change->changed ? "" : " (already set; nothing changed)");
  if (a.no_wait) {
    res.json["live"] = nullptr;
    res.text = line + "\n";
    return res;
  }
  auto t0 = std::chrono::steady_clock::now();
  Status live = backend.WaitLive(a.tenant, a.cluster, std::chrono::milliseconds((*cfg)->timeouts.route_live_ms));
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0).count();
  if (!live.ok()) {
    // A route that is not proven live is rolled back: exit 1 means "failed, nothing changed".
    Status undo = backend.Restore(*change);
    res.json["live"] = false;
    if (!undo.ok()) {
      res.status = Status::NeedsOperator(live.message() + "; restoring the previous route failed: " + undo.message(),
                                         undo.hint());
      return res;
    }
    res.json["restored"] = true;
    res.status = Status::Failed(live.message() + "; the previous route was restored", live.hint());
    return res;
  }
  if ((*cfg)->proxy.kind == ProxyKind::kTraefikFile && (*cfg)->proxy.traefik.api_url.empty()) {
    res.json["live"] = nullptr;  // nothing to prove it with
    res.text = line + "; not proven live (proxy.traefik.api_url is not set)\n";
    return res;
  }
  res.json["live"] = true;
  res.json["live_ms"] = ms;
  res.text = line + "; live after " + std::to_string(ms) + " ms\n";
  return res;
}

CommandResult RunAdopt(Context& ctx, const RouteArgs& a) {
  auto cfg = ctx.config();
  if (!cfg.ok()) return Fail(cfg.status());
  if ((*cfg)->proxy.kind != ProxyKind::kTraefikFile) {
    return Fail(Status::BadInput("`route adopt` applies to proxy.kind traefik-file only",
                                 "HAProxy map entries need no adoption"));
  }
  if (a.all == !a.tenants.empty()) {
    return Fail(Status::BadInput("name the tenants to adopt, or pass --all (not both)"));
  }
  auto routes = TraefikFileRoutes::Make(**cfg);
  if (!routes.ok()) return Fail(routes.status());
  auto report = a.all ? (*routes)->AdoptAll() : (*routes)->Adopt(a.tenants);
  if (!report.ok()) return Fail(report.status());
  CommandResult res;
  res.json = report->ToJson();
  res.text = report->ToText();
  return res;
}

const CommandRegistrar kRoute([](CLI::App& app, const auto& bind) {
  auto* route = app.add_subcommand("route", "show or change a tenant's route on the reverse proxy");
  route->require_subcommand(1);

  auto show_args = std::make_shared<RouteArgs>();
  auto* show = route->add_subcommand("show", "list tenant routes, or show one tenant's route");
  show->add_option("TENANT", show_args->tenant, "tenant (headscale user name)");
  bind(show, [show_args](Context& ctx) { return RunShow(ctx, *show_args); });

  auto set_args = std::make_shared<RouteArgs>();
  auto* set = route->add_subcommand("set", "point a tenant's route at a cluster and prove it live");
  set->add_option("TENANT", set_args->tenant, "tenant (headscale user name)")->required();
  set->add_option("CLUSTER", set_args->cluster, "target cluster id")->required();
  set->add_flag("--create", set_args->create, "also route a tenant that has no route yet");
  set->add_flag("--no-wait", set_args->no_wait, "do not wait for the proxy to serve the new route");
  set->add_option("--snapshot-out", set_args->snapshot_out,
                  "first record the tenant's sessions on this host (its own network namespace) to FILE, right before "
                  "the switch: a fleet proxy host's cut (then `sessions kill --snapshot-in FILE`); kept if the route "
                  "already points at CLUSTER");
  set->add_option("--client", set_args->clients, "with --snapshot-out: tenant client address or CIDR, repeatable");
  set->add_option("--port", set_args->ports, "with --snapshot-out: the proxy's listen port(s), e.g. 80,443");
  bind(set, [set_args](Context& ctx) { return RunSet(ctx, *set_args); });

  auto adopt_args = std::make_shared<RouteArgs>();
  auto* adopt = route->add_subcommand(
      "adopt", "Traefik: copy routers defined in operator files into headshift-owned files, print what to delete");
  adopt->add_option("TENANT", adopt_args->tenants, "tenants whose routers to adopt");
  adopt->add_flag("--all", adopt_args->all, "adopt every router whose name matches proxy.traefik.router_template");
  bind(adopt, [adopt_args](Context& ctx) { return RunAdopt(ctx, *adopt_args); });
});

}  // namespace
}  // namespace headshift::cli
