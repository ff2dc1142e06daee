#include "proxycfg/haproxy_map_routes.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <map>
#include <cerrno>
#include <cstring>
#include <thread>

#include <spdlog/spdlog.h>

#include "common/atomic_file.h"
#include "proxycfg/directory_lock.h"
#include "proxycfg/haproxy_map_file.h"

namespace headshift {
namespace {

constexpr int64_t kLockTimeoutMs = 30000;

std::string Show(const std::optional<std::string>& v) { return v ? *v : "(no entry)"; }

// Writes the map file atomically, keeping the mode and owner of the file it replaces.
Status WriteMapFile(const std::string& path, const std::string& text) {
  struct stat st{};
  bool existed = ::stat(path.c_str(), &st) == 0;
  mode_t mode = existed ? (st.st_mode & 07777) : 0644;
  HS_RETURN_IF_ERROR(WriteFileAtomically(path, text, mode));
  if (existed && (st.st_uid != ::geteuid() || st.st_gid != ::getegid())) {
    if (::chown(path.c_str(), st.st_uid, st.st_gid) != 0) {
      spdlog::warn("map file {}: could not restore owner {}:{}: {}", path, st.st_uid, st.st_gid, std::strerror(errno));
    }
  }
  return Status::Ok();
}

}  // namespace

StatusOr<std::unique_ptr<HaproxyMapRoutes>> HaproxyMapRoutes::Make(const Config& config) {
  if (config.proxy.kind != ProxyKind::kHaproxy) {
    return Status::BadInput("proxy.kind is " + std::string(ProxyKindName(config.proxy.kind)) + ", not haproxy");
  }
  for (size_t i = 0; i < config.clusters.size(); ++i) {
    HS_RETURN_IF_ERROR(ValidateBackendName(config.clusters[i].backend, "clusters[" + std::to_string(i) + "].backend"));
  }
  const std::string& map = config.proxy.haproxy.map_file;
  if (map.empty() || map[0] != '/') {
    return Status::BadInput("proxy.haproxy.map_file '" + map + "' must be an absolute path",
                            "use the exact path haproxy.cfg names in map(...)");
  }
  for (char c : map) {
    if (c == ' ' || c == '\t' || c == ';' || c == '\n') {
      return Status::BadInput("proxy.haproxy.map_file '" + map + "' contains a blank or ';'",
                              "the runtime API cannot address such a map; rename the file");
    }
  }
  return std::unique_ptr<HaproxyMapRoutes>(new HaproxyMapRoutes(config));
}

HaproxyMapRoutes::HaproxyMapRoutes(const Config& config)
    : config_(config),
      haproxy_(config.proxy.haproxy),
      host_template_(config.proxy.haproxy.host_template, /*lowercase=*/true),
      runtime_(config.proxy.haproxy.runtime_socket, config.timeouts.http_ms) {}

std::string HaproxyMapRoutes::ClusterOf(const std::string& backend) const {
  for (const auto& c : config_.clusters) {
    if (c.backend == backend) return c.id;
  }
  return "";
}

StatusOr<std::optional<Route>> HaproxyMapRoutes::Get(const std::string& tenant) {
  auto host = host_template_.Render(tenant);
  if (!host.ok()) return host.status();
  auto text = ReadFile(haproxy_.map_file);
  std::optional<std::string> file_value;
  if (text.ok()) file_value = HaproxyMapFile(*text).Lookup(*host);
  auto live = runtime_.GetMap(haproxy_.map_file, *host);
  Route r;
  r.tenant = tenant;
  r.source = haproxy_.map_file;
  if (!live.ok()) {
    if (!text.ok()) return live.status();
    if (!file_value) return std::optional<Route>();
    r.backend = *file_value;
    r.detail = "from the map file only; runtime: " + live.status().message();
  } else if (live->has_value()) {
    r.backend = **live;
    if (file_value != *live) {
      r.detail = "HAProxy serves " + **live + " but the map file says " + Show(file_value) +
                 " (a reload would switch to the file)";
    }
  } else {
    if (!file_value) return std::optional<Route>();
    r.backend = *file_value;
    r.detail = "only in the map file; HAProxy has no entry (a reload would add it)";
  }
  r.cluster_id = ClusterOf(r.backend);
  return std::optional<Route>(r);
}

StatusOr<std::vector<Route>> HaproxyMapRoutes::List() {
  std::map<std::string, Route> by_tenant;
  auto text = ReadFile(haproxy_.map_file);
  if (!text.ok()) return text.status();
  HaproxyMapFile file(*text);
  auto live = runtime_.ShowMap(haproxy_.map_file);
  if (live.ok()) {
    for (const auto& e : *live) {
      auto tenant = host_template_.Match(e.key);
      if (!tenant || by_tenant.count(*tenant)) continue;  // HAProxy uses the first entry
      Route r{*tenant, ClusterOf(e.value), e.value, haproxy_.map_file, true, ""};
      auto fv = file.Lookup(e.key);
      if (fv != e.value) r.detail = "the map file says " + Show(fv);
      by_tenant[*tenant] = r;
    }
  }
  for (const auto& [key, value] : file.Entries()) {
    auto tenant = host_template_.Match(key);
    if (!tenant || by_tenant.count(*tenant)) continue;
    Route r{*tenant, ClusterOf(value), value, haproxy_.map_file, true,
            live.ok() ? "only in the map file; HAProxy has no entry" : "from the map file only; runtime: " +
                                                                          live.status().message()};
    by_tenant[*tenant] = r;
  }
  std::vector<Route> out;
  for (auto& [t, r] : by_tenant) out.push_back(std::move(r));
  return out;
}

Status HaproxyMapRoutes::CheckDuplicates(const std::string& host, const std::string& file_text) {
  auto lines = HaproxyMapFile(file_text).LinesOf(host);
  if (lines.size() > 1) {
    std::string where;
    for (int l : lines) where += (where.empty() ? "" : ", ") + std::to_string(l);
    return Status::Refused("map file " + haproxy_.map_file + " has " + std::to_string(lines.size()) +
                               " entries for key " + host + " (lines " + where + ")",
                           "keep one line for " + host + " (HAProxy uses the first), then retry");
  }
  auto live = runtime_.ShowMap(haproxy_.map_file);
  if (!live.ok()) return live.status();
  size_t n = std::count_if(live->begin(), live->end(), [&](const MapEntry& e) { return e.key == host; });
  if (n > 1) {
    return Status::Refused("HAProxy's map " + haproxy_.map_file + " holds " + std::to_string(n) + " entries for key " +
                               host,
                           "remove the extra ones (`del map` and re-add one), or reload HAProxy with a map file "
                           "that has one line for it");
  }
  return Status::Ok();
}

Status HaproxyMapRoutes::CheckOwnership(const std::string& tenant) {
  auto host = host_template_.Render(tenant);
  if (!host.ok()) return host.status();
  auto text = ReadFile(haproxy_.map_file);
  if (!text.ok()) return text.status();
  return CheckDuplicates(*host, *text);
}

StatusOr<RouteChange> HaproxyMapRoutes::Set(const std::string& tenant, const std::string& cluster_id) {
  return SetRoute(tenant, cluster_id, /*allow_add=*/false);
}

StatusOr<RouteChange> HaproxyMapRoutes::Add(const std::string& tenant, const std::string& cluster_id) {
  return SetRoute(tenant, cluster_id, /*allow_add=*/true);
}

StatusOr<RouteChange> HaproxyMapRoutes::SetRoute(const std::string& tenant, const std::string& cluster_id,
                                                 bool allow_add) {
  // Preflight: everything that can refuse is checked before the first change.
  auto host = host_template_.Render(tenant);
  if (!host.ok()) return host.status();
  const ClusterConfig* cluster = config_.FindCluster(cluster_id);
  if (!cluster) {
    return Status::BadInput("unknown cluster '" + cluster_id + "'", "use one of the configured clusters: " +
                                                                        config_.ClusterIds());
  }
  const std::string dir = DirName(haproxy_.map_file);
  auto lock = DirectoryLock::Acquire(dir, kLockTimeoutMs);
  if (!lock.ok()) return lock.status();
  HS_RETURN_IF_ERROR(CheckDirectoryWritable(dir, "map file directory"));
  auto text = ReadFile(haproxy_.map_file);
  if (!text.ok()) return text.status();
  HS_RETURN_IF_ERROR(CheckDuplicates(*host, *text));
  auto backends = runtime_.Backends();
  if (!backends.ok()) return backends.status();
  if (std::find(backends->begin(), backends->end(), cluster->backend) == backends->end()) {
    return Status::BadInput("HAProxy has no backend '" + cluster->backend + "' (cluster " + cluster_id + ")",
                            "define `backend " + cluster->backend + "` in haproxy.cfg, or fix clusters[].backend");
  }
  auto live = runtime_.GetMap(haproxy_.map_file, *host);
  if (!live.ok()) return live.status();
  std::optional<std::string> file_value = HaproxyMapFile(*text).Lookup(*host);
  if (!live->has_value() && !allow_add) {
    std::string known;
    int n = 0;
    auto routes = List();
    if (routes.ok()) {
      for (const auto& r : *routes) {
        if (n++ < 10) known += (known.empty() ? "" : ", ") + r.tenant;
      }
    }
    return Status::BadInput("unknown tenant '" + tenant + "': HAProxy's map " + haproxy_.map_file +
                                " has no entry for " + *host +
                                (file_value ? " (the map file has one; reload HAProxy first)" : ""),
                            known.empty() ? "check the tenant name and proxy.haproxy.host_template"
                                          : "routed tenants include: " + known +
                                                "; to route a new tenant use `headshift route set --create`");
  }

  RouteChange change;
  change.tenant = tenant;
  change.previous_backend = *live;
  if (*live) {
    std::string pc = ClusterOf(**live);
    if (!pc.empty()) change.previous_cluster = pc;
  }
  change.new_cluster = cluster_id;
  change.new_backend = cluster->backend;
  change.changed = *live != cluster->backend || file_value != cluster->backend;
  if (!change.changed) return change;
  HS_RETURN_IF_ERROR(Converge(*host, *live, cluster->backend, *text));
  spdlog::info("route {}: {} -> {} (cluster {}) in HAProxy map {}", tenant, Show(*live), cluster->backend,
               cluster_id, haproxy_.map_file);
  return change;
}

Status HaproxyMapRoutes::Converge(const std::string& host, const std::optional<std::string>& live,
                                  const std::optional<std::string>& want, const std::string& file_text) {
  const std::string& map = haproxy_.map_file;
  auto apply = [&](const std::optional<std::string>& from, const std::optional<std::string>& to) -> Status {
    if (from == to) return Status::Ok();
    if (!to) return runtime_.DelMap(map, host);
    if (from) return runtime_.SetMap(map, host, *to);
    return runtime_.AddMap(map, host, *to);
  };
  HS_RETURN_IF_ERROR(apply(live, want));
  // Verify with the same lookup a request does.
  auto now = runtime_.GetMap(map, host);
  if (!now.ok() || *now != want) {
    Status undo = apply(want, live);
    std::string seen = now.ok() ? Show(*now) : now.status().message();
    if (!undo.ok()) {
      return Status::NeedsOperator("HAProxy map " + map + ": " + host + " should be " + Show(want) + " but `get map` shows " +
                                       seen + ", and restoring " + Show(live) + " failed: " + undo.message(),
                                   "set it by hand: `set map " + map + " " + host + " " + Show(live) + "`");
    }
    return Status::Failed("HAProxy map " + map + ": " + host + " should be " + Show(want) + " but `get map` shows " +
                          seen + "; restored " + Show(live));
  }
  HaproxyMapFile file(file_text);
  std::string new_text = want ? file.WithValue(host, *want) : file.Without(host);
  if (new_text == file_text) return Status::Ok();
  Status w = WriteMapFile(map, new_text);
  if (!w.ok()) {
    Status undo = apply(want, live);
    if (!undo.ok()) {
      return Status::NeedsOperator(w.message() + "; HAProxy now serves " + Show(want) + " for " + host +
                                       " and undoing that failed: " + undo.message(),
                                   "fix the map file by hand so a reload does not surprise you");
    }
    return Status::Failed(w.message() + " (HAProxy's map was restored to " + Show(live) + "; nothing changed)",
                          w.hint());
  }
  return Status::Ok();
}

Status HaproxyMapRoutes::WaitLive(const std::string& tenant, const std::string& cluster_id,
                                  std::chrono::milliseconds deadline) {
  auto host = host_template_.Render(tenant);
  if (!host.ok()) return host.status();
  const ClusterConfig* cluster = config_.FindCluster(cluster_id);
  if (!cluster) return Status::BadInput("unknown cluster '" + cluster_id + "'", "use one of: " + config_.ClusterIds());
  const auto end = std::chrono::steady_clock::now() + deadline;
  std::string last;
  while (true) {
    auto live = runtime_.GetMap(haproxy_.map_file, *host);
    if (live.ok() && *live == cluster->backend) {
      auto st = runtime_.BackendStatus(cluster->backend);
      if (st.ok() && *st == "UP") return Status::Ok();
      last = *host + " -> " + cluster->backend + ", but backend " + cluster->backend + " is " +
             (st.ok() ? *st : st.status().message());
    } else {
      last = live.ok() ? *host + " -> " + Show(*live) : live.status().message();
    }
    if (std::chrono::steady_clock::now() >= end) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return Status::Failed("route of tenant " + tenant + " is not live on cluster " + cluster_id + " after " +
                            std::to_string(deadline.count()) + " ms; HAProxy last showed: " + last,
                        "check the backend's servers (`show stat`) and that nothing else rewrites the map");
}

Status HaproxyMapRoutes::Restore(const RouteChange& change) {
  auto host = host_template_.Render(change.tenant);
  if (!host.ok()) return host.status();
  const std::string dir = DirName(haproxy_.map_file);
  auto lock = DirectoryLock::Acquire(dir, kLockTimeoutMs);
  if (!lock.ok()) return lock.status();
  HS_RETURN_IF_ERROR(CheckDirectoryWritable(dir, "map file directory"));
  auto text = ReadFile(haproxy_.map_file);
  if (!text.ok()) return text.status();
  auto live = runtime_.GetMap(haproxy_.map_file, *host);
  if (!live.ok()) return live.status();
  std::optional<std::string> file_value = HaproxyMapFile(*text).Lookup(*host);
  const auto& want = change.previous_backend;
  if (*live == want && file_value == want) return Status::Ok();  // already restored
  if (*live != want && *live != change.new_backend) {
    return Status::Refused("route of tenant " + change.tenant + " was changed since: HAProxy serves " + Show(*live) +
                               ", expected " + change.new_backend + " (or " + Show(want) + " if restored)",
                           "someone else moved the tenant; check `headshift route show " + change.tenant +
                               "` and restore by hand if needed");
  }
  HS_RETURN_IF_ERROR(CheckDuplicates(*host, *text));
  HS_RETURN_IF_ERROR(Converge(*host, *live, want, *text));
  spdlog::info("route {}: restored {} (was {})", change.tenant, Show(want), Show(*live));
  return Status::Ok();
}

}  // namespace headshift
