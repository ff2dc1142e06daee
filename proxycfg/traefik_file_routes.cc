#include "proxycfg/traefik_file_routes.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>
#include <set>
#include <sstream>
#include <thread>

#include <spdlog/spdlog.h>

#include "common/atomic_file.h"
#include "proxycfg/directory_lock.h"

namespace headshift {
namespace {

constexpr int64_t kLockTimeoutMs = 30000;
constexpr mode_t kFileMode = 0644;

std::string Show(const std::optional<std::string>& v) { return v ? *v : "(no route)"; }

bool Exists(const std::string& path) {
  struct stat st{};
  return ::stat(path.c_str(), &st) == 0;
}

// "svc@file" -> "svc"; other providers' names stay qualified (they are not ours).
std::string Unqualified(const std::string& service) {
  const std::string suffix = "@file";
  if (service.size() > suffix.size() && service.compare(service.size() - suffix.size(), suffix.size(), suffix) == 0) {
    return service.substr(0, service.size() - suffix.size());
  }
  return service;
}

// One planned file operation: write `content`, or delete when content is nullopt. `before` is
// what the file held (nullopt: absent), for the undo.
struct FileOp {
  std::string path;
  std::optional<std::string> before;
  std::optional<std::string> content;
};

Status RemoveFile(const std::string& path) {
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
    return Status::Failed("cannot delete " + path + ": " + std::strerror(errno));
  }
  int dfd = ::open(DirName(path).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
  return Status::Ok();
}

Status Perform(const std::optional<std::string>& content, const std::string& path) {
  return content ? WriteFileAtomically(path, *content, kFileMode) : RemoveFile(path);
}

// Applies `ops` in order; if one fails, undoes the ones already applied (reverse order) so the
// directory is as it was. NeedsOperator if the undo itself fails.
Status ApplyAll(const std::vector<FileOp>& ops) {
  for (size_t i = 0; i < ops.size(); ++i) {
    Status st = Perform(ops[i].content, ops[i].path);
    if (st.ok()) continue;
    for (size_t j = i; j-- > 0;) {
      Status undo = Perform(ops[j].before, ops[j].path);
      if (!undo.ok()) {
        return Status::NeedsOperator(st.message() + "; undoing the change to " + ops[j].path +
                                         " failed too: " + undo.message(),
                                     "restore " + ops[j].path + " by hand");
      }
    }
    return Status::Failed(st.message() + " (nothing changed)", st.hint());
  }
  return Status::Ok();
}

std::optional<std::string> ReadIfExists(const std::string& path, Status* error) {
  if (!Exists(path)) return std::nullopt;
  auto t = ReadFile(path);
  if (!t.ok()) {
    *error = t.status();
    return std::nullopt;
  }
  return *t;
}

std::string Base(const std::string& path) {
  size_t s = path.rfind('/');
  return s == std::string::npos ? path : path.substr(s + 1);
}

}  // namespace

// ---- AdoptReport ----

nlohmann::json AdoptReport::ToJson() const {
  auto keys = [](const std::vector<std::pair<std::string, std::string>>& v) {
    nlohmann::json a = nlohmann::json::array();
    for (const auto& [f, k] : v) a.push_back({{"file", f}, {"key", k}});
    return a;
  };
  nlohmann::json items_json = nlohmann::json::array();
  for (const auto& i : items) {
    items_json.push_back({{"tenant", i.tenant},
                          {"router", i.router},
                          {"written", i.written},
                          {"copied_from", i.copied_from},
                          {"service", i.service},
                          {"cluster", i.cluster_id},
                          {"delete", keys(i.delete_keys)}});
  }
  return {{"adopted", items_json}, {"services_written", services_written}, {"delete_services", keys(service_delete_keys)}};
}

std::string AdoptReport::ToText() const {
  std::ostringstream o;
  for (const auto& i : items) {
    o << "tenant " << i.tenant << ": router " << i.router;
    if (!i.written.empty()) {
      o << " copied from " << i.copied_from << " to " << i.written;
    } else {
      o << " already in " << (i.copied_from.empty() ? "its headshift file" : i.copied_from);
    }
    o << " (service " << i.service << (i.cluster_id.empty() ? ", no configured cluster" : ", cluster " + i.cluster_id)
      << ")\n";
    for (const auto& [f, k] : i.delete_keys) o << "  delete from " << f << ": " << k << "\n";
  }
  if (!services_written.empty()) o << "cluster services written to " << services_written << "\n";
  for (const auto& [f, k] : service_delete_keys) o << "  delete from " << f << ": " << k << "\n";
  bool any = !service_delete_keys.empty();
  for (const auto& i : items) any = any || !i.delete_keys.empty();
  o << (any ? "These routes are managed by headshift once the keys above are deleted (Traefik applies the first "
              "definition of a name; the copies are identical, so deleting them changes no routing).\n"
            : "Nothing left to delete: these routes are managed by headshift.\n");
  return o.str();
}

// ---- TraefikFileRoutes ----

StatusOr<std::unique_ptr<TraefikFileRoutes>> TraefikFileRoutes::Make(const Config& config) {
  if (config.proxy.kind != ProxyKind::kTraefikFile) {
    return Status::BadInput("proxy.kind is " + std::string(ProxyKindName(config.proxy.kind)) + ", not traefik-file");
  }
  for (size_t i = 0; i < config.clusters.size(); ++i) {
    HS_RETURN_IF_ERROR(ValidateBackendName(config.clusters[i].backend, "clusters[" + std::to_string(i) + "].backend"));
  }
  const auto& t = config.proxy.traefik;
  if (t.file_prefix.empty() || t.file_prefix.find('/') != std::string::npos) {
    return Status::BadInput("proxy.traefik.file_prefix '" + t.file_prefix + "' must be a non-empty file name prefix",
                            "the default is headshift-");
  }
  auto probe = NameTemplate(t.router_template).Render("x");
  if (probe.ok()) {
    Status st = ValidateBackendName(*probe, "proxy.traefik.router_template");
    if (!st.ok()) return Status::BadInput(st.message(), "router names may contain only letters, digits, '.', '_', '-'");
  }
  return std::unique_ptr<TraefikFileRoutes>(new TraefikFileRoutes(config));
}

TraefikFileRoutes::TraefikFileRoutes(const Config& config)
    : config_(config),
      traefik_(config.proxy.traefik),
      router_template_(config.proxy.traefik.router_template),
      host_template_(config.proxy.traefik.host_template),
      files_(config.proxy.traefik.directory, config.proxy.traefik.file_prefix) {}

StatusOr<TraefikApiClient*> TraefikFileRoutes::Api() {
  if (traefik_.api_url.empty()) return static_cast<TraefikApiClient*>(nullptr);
  if (!api_) {
    auto a = TraefikApiClient::Make(traefik_, config_.timeouts.http_ms);
    if (!a.ok()) return a.status();
    api_ = std::move(a).value();
  }
  return api_.get();
}

std::string TraefikFileRoutes::ClusterOf(const std::string& service) const {
  std::string s = Unqualified(service);
  for (const auto& c : config_.clusters) {
    if (c.backend == s) return c.id;
  }
  return "";
}

TraefikRouterSpec TraefikFileRoutes::Spec(const std::string& router, const std::string& host) const {
  TraefikRouterSpec s;
  s.router = router;
  s.host = host;
  s.entry_points = traefik_.entry_points;
  s.tls = traefik_.tls;
  s.cert_resolver = traefik_.cert_resolver;
  s.tcp_passthrough = traefik_.tcp_passthrough;
  return s;
}

std::vector<TraefikServiceDef> TraefikFileRoutes::WantedServices(const TraefikProviderDirectory* copy_from) const {
  std::vector<TraefikServiceDef> out;
  const std::string owned = files_.ServicesFile();
  for (const auto& c : config_.clusters) {
    TraefikServiceDef d = GeneratedService(c.backend, c.upstream_url, traefik_.tcp_passthrough);
    if (copy_from) {
      // Adopt: keep the operator's definition (health checks, several servers, ...) verbatim.
      for (const char* proto : {"http", "tcp"}) {
        for (const auto& def : copy_from->Definers(std::string(proto) + ".services", c.backend)) {
          if (def.file == owned || !def.parsed) continue;
          auto node = copy_from->Definition(def.file, std::string(proto) + ".services", c.backend);
          if (node) (std::string(proto) == "http" ? d.http : d.tcp) = *node;
          break;  // the first definition is the effective one
        }
      }
    }
    out.push_back(d);
  }
  return out;
}

std::vector<std::string> TraefikFileRoutes::OwnershipNames(const std::string& router) const {
  std::vector<std::string> names{router};
  for (const auto& c : config_.clusters) names.push_back(c.backend);
  return names;
}

Status TraefikFileRoutes::Ownership(const TraefikProviderDirectory& scan, const std::string& tenant,
                                    const std::string& router) {
  const std::string tenant_file = files_.TenantFile(tenant);
  const std::string services_file = files_.ServicesFile();
  std::vector<std::pair<std::string, std::string>> conflicts;  // (file, key)
  bool unparsed = false;
  auto check = [&](const std::string& section, const std::string& name, const std::string& owner) {
    for (const auto& d : scan.Definers(section, name)) {
      if (d.file == owner) continue;
      conflicts.emplace_back(d.file, section + "." + name + (d.parsed ? "" : " (file does not parse; name found in it)"));
      unparsed = unparsed || !d.parsed;
    }
  };
  check("http.routers", router, tenant_file);
  check("tcp.routers", router, tenant_file);
  for (const auto& c : config_.clusters) {
    check("http.services", c.backend, services_file);
    check("tcp.services", c.backend, services_file);
  }
  if (conflicts.empty()) return Status::Ok();
  std::string msg = "route of tenant " + tenant + " is not owned by headshift: ";
  for (size_t i = 0; i < conflicts.size(); ++i) {
    msg += (i ? "; " : "") + conflicts[i].second + " is also defined in " + conflicts[i].first;
  }
  msg += " (Traefik applies the first definition of a name and skips the others)";
  return Status::Refused(msg, "run `headshift route adopt " + tenant +
                                  "`, then delete the keys it prints from those files" +
                                  (unparsed ? "; fix the files that do not parse" : ""));
}

Status TraefikFileRoutes::CheckOwnership(const std::string& tenant) {
  auto router = router_template_.Render(tenant);
  if (!router.ok()) return router.status();
  auto scan = TraefikProviderDirectory::ScanFor(files_.dir(), OwnershipNames(*router));
  if (!scan.ok()) return scan.status();
  HS_RETURN_IF_ERROR(Ownership(*scan, tenant, *router));
  // While one file of the directory does not parse, Traefik applies no file-provider change at all
  // (seen on Traefik 3.7: "collecting file configs: ...: yaml: ..."), so a flip could never go live.
  // Preflight parses every file (ScanFor above parses only those naming the route) and refuses first.
  auto full = TraefikProviderDirectory::Scan(files_.dir());
  if (!full.ok()) return full.status();
  if (!full->unparsable().empty()) {
    std::string msg = "Traefik would not load a route change: files in " + files_.dir() + " do not parse: ";
    for (size_t i = 0; i < full->unparsable().size(); ++i) {
      const auto& e = full->unparsable()[i];
      msg += (i ? "; " : "") + e.file + " (" + e.message + ")";
    }
    return Status::Refused(msg + " (while one is broken Traefik applies no file-provider change)",
                           "fix or remove those files (Traefik's log names the same error), then run again");
  }
  return Status::Ok();
}

StatusOr<std::optional<Route>> TraefikFileRoutes::Get(const std::string& tenant) {
  auto router = router_template_.Render(tenant);
  if (!router.ok()) return router.status();
  auto scan = TraefikProviderDirectory::ScanFor(files_.dir(), {*router});
  if (!scan.ok()) return scan.status();
  const std::string own = files_.TenantFile(tenant);
  auto definers = scan->Definers("http.routers", *router);
  Route r;
  r.tenant = tenant;
  if (Exists(own)) {
    auto text = ReadFile(own);
    if (!text.ok()) return text.status();
    auto svc = TenantFileService(*text, *router, own);
    if (!svc.ok()) return svc.status();
    r.backend = *svc;
    r.source = own;
    for (const auto& d : definers) {
      if (d.file == own) continue;
      r.detail += (r.detail.empty() ? "also defined in " : ", ") + d.file;
    }
    if (!r.detail.empty() && !definers.empty()) r.detail += " (Traefik uses " + definers[0].file + ")";
  } else {
    const TraefikProviderDirectory::Definer* first = nullptr;
    for (const auto& d : definers) {
      if (d.parsed) {
        first = &d;
        break;
      }
    }
    if (!first) return std::optional<Route>();
    auto def = scan->Definition(first->file, "http.routers", *router);
    r.backend = def && (*def)["service"] ? (*def)["service"].as<std::string>("") : "";
    r.source = first->file;
    r.managed = false;
  }
  r.cluster_id = ClusterOf(r.backend);
  return std::optional<Route>(r);
}

StatusOr<std::vector<Route>> TraefikFileRoutes::List() {
  auto scan = TraefikProviderDirectory::Scan(files_.dir());
  if (!scan.ok()) return scan.status();
  std::map<std::string, Route> by_tenant;
  // Owned tenant files first, then routers in operator files that route to a cluster.
  for (const auto& [file, name] : scan->Names("http.routers")) {
    auto tenant = files_.TenantOfFile(file);
    if (!tenant) continue;
    auto router = router_template_.Render(*tenant);
    if (!router.ok() || *router != name) continue;
    auto def = scan->Definition(file, "http.routers", name);
    std::string svc = def && (*def)["service"] ? (*def)["service"].as<std::string>("") : "";
    Route r{*tenant, ClusterOf(svc), svc, file, true, ""};
    for (const auto& d : scan->Definers("http.routers", name)) {
      if (d.file != file) r.detail += (r.detail.empty() ? "also defined in " : ", ") + d.file;
    }
    by_tenant[*tenant] = r;
  }
  for (const auto& [file, name] : scan->Names("http.routers")) {
    if (files_.TenantOfFile(file)) continue;
    auto tenant = router_template_.Match(name);
    if (!tenant || by_tenant.count(*tenant)) continue;
    auto def = scan->Definition(file, "http.routers", name);
    std::string svc = def && (*def)["service"] ? (*def)["service"].as<std::string>("") : "";
    if (ClusterOf(svc).empty()) continue;
    by_tenant[*tenant] = Route{*tenant, ClusterOf(svc), svc, file, false, ""};
  }
  std::vector<Route> out;
  for (auto& [t, r] : by_tenant) out.push_back(std::move(r));
  return out;
}

StatusOr<RouteChange> TraefikFileRoutes::Set(const std::string& tenant, const std::string& cluster_id) {
  return SetRoute(tenant, cluster_id, /*allow_add=*/false);
}

StatusOr<RouteChange> TraefikFileRoutes::Add(const std::string& tenant, const std::string& cluster_id) {
  return SetRoute(tenant, cluster_id, /*allow_add=*/true);
}

StatusOr<RouteChange> TraefikFileRoutes::SetRoute(const std::string& tenant, const std::string& cluster_id,
                                                  bool allow_add) {
  // Preflight: everything that can refuse is checked before the first write.
  auto router = router_template_.Render(tenant);
  if (!router.ok()) return router.status();
  auto host = host_template_.Render(tenant);
  if (!host.ok()) return host.status();
  const ClusterConfig* cluster = config_.FindCluster(cluster_id);
  if (!cluster) {
    return Status::BadInput("unknown cluster '" + cluster_id + "'",
                            "use one of the configured clusters: " + config_.ClusterIds());
  }
  auto lock = DirectoryLock::Acquire(files_.dir(), kLockTimeoutMs);
  if (!lock.ok()) return lock.status();
  HS_RETURN_IF_ERROR(CheckDirectoryWritable(files_.dir(), "Traefik provider directory"));
  auto scan = TraefikProviderDirectory::ScanFor(files_.dir(), OwnershipNames(*router));
  if (!scan.ok()) return scan.status();
  HS_RETURN_IF_ERROR(Ownership(*scan, tenant, *router));
  auto api = Api();
  if (!api.ok()) return api.status();
  if (*api) {  // reachable, and the credentials work, before anything is written
    auto probe = (*api)->GetRouter("http", *router + "@file");
    if (!probe.ok()) return probe.status();
  }

  const std::string tenant_path = files_.TenantFile(tenant);
  const std::string services_path = files_.ServicesFile();
  Status read_error;
  std::optional<std::string> tenant_text = ReadIfExists(tenant_path, &read_error);
  HS_RETURN_IF_ERROR(read_error);
  std::optional<std::string> services_text = ReadIfExists(services_path, &read_error);
  HS_RETURN_IF_ERROR(read_error);
  if (!tenant_text && !allow_add) {
    std::string known;
    auto routes = List();
    int n = 0;
    if (routes.ok()) {
      for (const auto& r : *routes) {
        if (n++ < 10) known += (known.empty() ? "" : ", ") + r.tenant;
      }
    }
    return Status::BadInput("unknown tenant '" + tenant + "': no router " + *router + " in " + files_.dir(),
                            known.empty() ? "check the tenant name and proxy.traefik.router_template"
                                          : "routed tenants include: " + known +
                                                "; to route a new tenant use `headshift route set --create`");
  }

  RouteChange change;
  change.tenant = tenant;
  change.new_cluster = cluster_id;
  change.new_backend = cluster->backend;
  std::string new_tenant_text;
  if (tenant_text) {
    auto svc = TenantFileService(*tenant_text, *router, tenant_path);
    if (!svc.ok()) return svc.status();
    change.previous_backend = *svc;
    std::string pc = ClusterOf(*svc);
    if (!pc.empty()) change.previous_cluster = pc;
    if (Unqualified(*svc) == cluster->backend) {
      new_tenant_text = *tenant_text;
    } else {
      auto edited = TenantFileWithService(*tenant_text, *router, cluster->backend, tenant_path);
      if (!edited.ok()) return edited.status();
      new_tenant_text = *edited;
    }
  } else {
    new_tenant_text = RenderTenantFile(tenant, Spec(*router, *host), cluster->backend);
  }
  auto new_services = EnsureServices(services_text.value_or(""), WantedServices(nullptr), services_path);
  if (!new_services.ok()) return new_services.status();

  std::vector<FileOp> ops;
  if (*new_services != services_text.value_or("") || !services_text) {
    ops.push_back({services_path, services_text, *new_services});  // services before the router using them
  }
  if (new_tenant_text != tenant_text.value_or("") || !tenant_text) {
    ops.push_back({tenant_path, tenant_text, new_tenant_text});
  }
  change.changed = !ops.empty();
  if (ops.empty()) return change;
  HS_RETURN_IF_ERROR(ApplyAll(ops));
  spdlog::info("route {}: {} -> {} (cluster {}) in {}", tenant, Show(change.previous_backend), cluster->backend,
               cluster_id, tenant_path);
  return change;
}

Status TraefikFileRoutes::WaitLive(const std::string& tenant, const std::string& cluster_id,
                                   std::chrono::milliseconds deadline) {
  auto router = router_template_.Render(tenant);
  if (!router.ok()) return router.status();
  const ClusterConfig* cluster = config_.FindCluster(cluster_id);
  if (!cluster) return Status::BadInput("unknown cluster '" + cluster_id + "'", "use one of: " + config_.ClusterIds());
  // A change that follows another within providersThrottleDuration is applied only when that
  // window ends, so the wait is extended by it.
  const auto total = deadline + std::chrono::milliseconds(traefik_.throttle_ms);
  auto api = Api();
  if (!api.ok()) return api.status();
  if (!*api) {
    spdlog::warn("proxy.traefik.api_url is not set: cannot prove the route of {} live; waiting {} ms "
                 "(providersThrottleDuration) instead",
                 tenant, traefik_.throttle_ms);
    std::this_thread::sleep_for(std::chrono::milliseconds(traefik_.throttle_ms));
    return Status::Ok();
  }
  bool has_tcp = false;
  {
    auto text = ReadFile(files_.TenantFile(tenant));
    if (text.ok()) {
      try {
        YAML::Node root = YAML::Load(*text);
        has_tcp = root["tcp"] && root["tcp"]["routers"] && root["tcp"]["routers"][*router];
      } catch (const YAML::Exception&) {
      }
    }
  }
  const auto end = std::chrono::steady_clock::now() + total;
  std::string last;
  while (true) {
    bool live = true;
    for (const char* proto : {"http", "tcp"}) {
      if (std::string(proto) == "tcp" && !has_tcp) continue;
      const std::string name = *router + "@file";
      auto r = (*api)->GetRouter(proto, name);
      if (!r.ok()) {
        if (r.status().code() == ExitCode::kBadInput) return r.status();  // credentials refused
        last = r.status().message();
        live = false;
        break;
      }
      if (!r->has_value()) {
        last = std::string("Traefik does not know ") + proto + " router " + name + " (HTTP 404)";
        live = false;
        break;
      }
      const TraefikRouterState& st = **r;
      if (Unqualified(st.service) != cluster->backend) {
        last = st.Describe();
        live = false;
        break;
      }
      if (st.status != "enabled" || !st.errors.empty()) {
        // The new configuration is loaded and Traefik rejects it: waiting longer will not help.
        return Status::Failed("Traefik loaded " + std::string(proto) + " router " + name + " for tenant " + tenant +
                                  " but it is in error: " + st.Describe(),
                              "fix the cause Traefik names (e.g. the service " + cluster->backend + " in " +
                                  files_.ServicesFile() + "), then retry");
      }
    }
    if (live) {
      auto s = (*api)->GetService("http", cluster->backend + "@file");
      if (!s.ok()) {
        if (s.status().code() == ExitCode::kBadInput) return s.status();
        last = s.status().message();
      } else if (!s->has_value()) {
        last = "Traefik does not know service " + cluster->backend + "@file (HTTP 404)";
      } else {
        const TraefikServiceState& ss = **s;
        bool up = ss.server_status.empty();  // no server states reported: nothing more to prove
        for (const auto& [server, state] : ss.server_status) up = up || state == "UP";
        if (ss.status == "enabled" && up) return Status::Ok();
        last = ss.Describe();
      }
    }
    if (std::chrono::steady_clock::now() >= end) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  std::string hint = "check Traefik's log and that providers.file.directory is " + files_.dir() + " with watch on";
  auto scan = TraefikProviderDirectory::Scan(files_.dir());
  if (scan.ok() && !scan->unparsable().empty()) {
    hint = "these files do not parse, and while one is broken Traefik applies no file-provider change: ";
    for (const auto& e : scan->unparsable()) hint += e.file + " (" + e.message + ") ";
  }
  return Status::Failed("route of tenant " + tenant + " is not live on cluster " + cluster_id + " after " +
                            std::to_string(total.count()) + " ms (route_live deadline " +
                            std::to_string(deadline.count()) + " ms + providersThrottleDuration " +
                            std::to_string(traefik_.throttle_ms) + " ms); the Traefik API last showed: " + last,
                        hint);
}

Status TraefikFileRoutes::Restore(const RouteChange& change) {
  auto router = router_template_.Render(change.tenant);
  if (!router.ok()) return router.status();
  auto lock = DirectoryLock::Acquire(files_.dir(), kLockTimeoutMs);
  if (!lock.ok()) return lock.status();
  HS_RETURN_IF_ERROR(CheckDirectoryWritable(files_.dir(), "Traefik provider directory"));
  const std::string path = files_.TenantFile(change.tenant);
  Status read_error;
  std::optional<std::string> text = ReadIfExists(path, &read_error);
  HS_RETURN_IF_ERROR(read_error);
  std::optional<std::string> current;
  if (text) {
    auto svc = TenantFileService(*text, *router, path);
    if (!svc.ok()) return svc.status();
    current = *svc;
  }
  const auto& want = change.previous_backend;
  auto same = [](const std::optional<std::string>& a, const std::optional<std::string>& b) {
    return a.has_value() == b.has_value() && (!a || Unqualified(*a) == Unqualified(*b));
  };
  if (same(current, want)) return Status::Ok();  // already restored
  if (!same(current, change.new_backend)) {
    return Status::Refused("route of tenant " + change.tenant + " was changed since: " + path + " routes to " +
                               Show(current) + ", expected " + change.new_backend + " (or " + Show(want) +
                               " if restored)",
                           "someone else moved the tenant; check `headshift route show " + change.tenant + "`");
  }
  FileOp op{path, text, std::nullopt};
  if (want) {
    auto edited = TenantFileWithService(*text, *router, *want, path);
    if (!edited.ok()) return edited.status();
    op.content = *edited;
  }
  HS_RETURN_IF_ERROR(ApplyAll({op}));
  spdlog::info("route {}: restored {} (was {})", change.tenant, Show(want), Show(current));
  return Status::Ok();
}

StatusOr<AdoptReport> TraefikFileRoutes::AdoptAll() {
  auto scan = TraefikProviderDirectory::Scan(files_.dir());
  if (!scan.ok()) return scan.status();
  std::set<std::string> tenants;
  for (const auto& [file, name] : scan->Names("http.routers")) {
    if (files_.TenantOfFile(file)) continue;
    auto tenant = router_template_.Match(name);
    if (!tenant) continue;
    auto def = scan->Definition(file, "http.routers", name);
    std::string svc = def && (*def)["service"] ? (*def)["service"].as<std::string>("") : "";
    if (!ClusterOf(svc).empty()) tenants.insert(*tenant);
  }
  if (tenants.empty()) {
    return Status::BadInput("no router in " + files_.dir() + " matches proxy.traefik.router_template '" +
                                router_template_.text() + "' and routes to a cluster's backend",
                            "name the tenants to adopt explicitly");
  }
  return Adopt(std::vector<std::string>(tenants.begin(), tenants.end()));
}

StatusOr<AdoptReport> TraefikFileRoutes::Adopt(const std::vector<std::string>& tenants) {
  std::vector<std::pair<std::string, std::string>> routers;  // (tenant, router)
  for (const auto& t : tenants) {
    auto r = router_template_.Render(t);
    if (!r.ok()) return r.status();
    routers.emplace_back(t, *r);
  }
  auto lock = DirectoryLock::Acquire(files_.dir(), kLockTimeoutMs);
  if (!lock.ok()) return lock.status();
  HS_RETURN_IF_ERROR(CheckDirectoryWritable(files_.dir(), "Traefik provider directory"));
  auto scan = TraefikProviderDirectory::Scan(files_.dir());
  if (!scan.ok()) return scan.status();

  AdoptReport report;
  std::vector<FileOp> ops;
  const std::string services_path = files_.ServicesFile();
  Status read_error;
  std::optional<std::string> services_text = ReadIfExists(services_path, &read_error);
  HS_RETURN_IF_ERROR(read_error);
  auto new_services = EnsureServices(services_text.value_or(""), WantedServices(&*scan), services_path);
  if (!new_services.ok()) return new_services.status();
  if (*new_services != services_text.value_or("") || !services_text) {
    ops.push_back({services_path, services_text, *new_services});
    report.services_written = services_path;
  }
  for (const auto& c : config_.clusters) {
    for (const char* proto : {"http", "tcp"}) {
      std::string section = std::string(proto) + ".services";
      for (const auto& d : scan->Definers(section, c.backend)) {
        if (d.file != services_path) report.service_delete_keys.emplace_back(d.file, section + "." + c.backend);
      }
    }
  }

  for (const auto& [tenant, router] : routers) {
    AdoptReport::Item item;
    item.tenant = tenant;
    item.router = router;
    const std::string own = files_.TenantFile(tenant);
    const TraefikProviderDirectory::Definer* effective = nullptr;  // first parsed operator definition
    auto http_definers = scan->Definers("http.routers", router);
    for (const auto& d : http_definers) {
      if (d.file == own) continue;
      item.delete_keys.emplace_back(d.file, "http.routers." + router);
      if (!effective && d.parsed) effective = &d;
    }
    for (const auto& d : scan->Definers("tcp.routers", router)) {
      if (d.file != own) item.delete_keys.emplace_back(d.file, "tcp.routers." + router);
    }
    if (Exists(own)) {
      auto text = ReadFile(own);
      if (!text.ok()) return text.status();
      auto svc = TenantFileService(*text, router, own);
      if (!svc.ok()) return svc.status();
      item.service = *svc;
    } else {
      if (!effective) {
        return Status::BadInput("tenant '" + tenant + "': no file in " + files_.dir() + " defines http.routers." +
                                    router + (http_definers.empty() ? "" : " in a form headshift can parse"),
                                "check the tenant name and proxy.traefik.router_template; nothing was written");
      }
      auto http = scan->Definition(effective->file, "http.routers", router);
      YAML::Node tcp;
      for (const auto& d : scan->Definers("tcp.routers", router)) {
        if (d.parsed) {
          auto n = scan->Definition(d.file, "tcp.routers", router);
          if (n) tcp = *n;
          break;
        }
      }
      item.copied_from = effective->file;
      item.service = (*http)["service"] ? (*http)["service"].as<std::string>("") : "";
      item.written = own;
      ops.push_back({own, std::nullopt, RenderAdoptedTenantFile(tenant, router, *http, tcp, Base(effective->file))});
    }
    item.cluster_id = ClusterOf(item.service);
    report.items.push_back(std::move(item));
  }
  HS_RETURN_IF_ERROR(ApplyAll(ops));
  return report;
}

}  // namespace headshift
