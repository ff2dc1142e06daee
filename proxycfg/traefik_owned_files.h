// The files headshift owns in a Traefik file-provider directory, and their content:
//   <dir>/<prefix>tenant-<tenant>.yml   the tenant's HTTP router (+ optional TCP HostSNI router)
//   <dir>/<prefix>services.yml          one service per cluster (HTTP, + TCP for passthrough)
// Only top-level files with these names are owned; headshift never writes any other file.
//
// Content is built and edited with yaml-cpp. Editing a tenant file changes only the routers'
// `service` (other fields an operator added are kept); the services file is only ever extended
// (a service missing for a configured cluster is added, existing entries are left as they are), so
// flipping one tenant never changes how another tenant is served.
//
// Thread-safety: stateless functions and an immutable naming object.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <yaml-cpp/yaml.h>

#include "common/status.h"

namespace headshift {

// How a new tenant router looks (from proxy.traefik in the config).
struct TraefikRouterSpec {
  std::string router;  // router name (router_template)
  std::string host;    // Host() / HostSNI() value (host_template)
  std::vector<std::string> entry_points;
  bool tls = false;
  std::string cert_resolver;
  bool tcp_passthrough = false;
};

// A service entry of the services file: HTTP definition and, optionally, TCP definition.
struct TraefikServiceDef {
  std::string name;
  YAML::Node http;  // null: none
  YAML::Node tcp;   // null: none
};

class TraefikOwnedFiles {
 public:
  TraefikOwnedFiles(std::string dir, std::string prefix);

  std::string TenantFile(const std::string& tenant) const;
  std::string ServicesFile() const;
  // The tenant a path names if it is an owned tenant file, else nullopt.
  std::optional<std::string> TenantOfFile(const std::string& path) const;
  const std::string& dir() const { return dir_; }

 private:
  std::string dir_;
  std::string prefix_;
};

// A new tenant file routing `spec` to `service`.
std::string RenderTenantFile(const std::string& tenant, const TraefikRouterSpec& spec, const std::string& service);
// A tenant file holding copies of existing router definitions (route adopt). `http` must be a map;
// `tcp` may be null.
std::string RenderAdoptedTenantFile(const std::string& tenant, const std::string& router, const YAML::Node& http,
                                    const YAML::Node& tcp, const std::string& from_file);
// The HTTP router's `service` in a tenant file. Failed naming `path` if the file does not parse or
// has no such router.
StatusOr<std::string> TenantFileService(const std::string& text, const std::string& router, const std::string& path);
// The tenant file with the `service` of the HTTP and (if present) TCP router replaced; every other
// field kept.
StatusOr<std::string> TenantFileWithService(const std::string& text, const std::string& router,
                                            const std::string& service, const std::string& path);
// The services file extended with every `wanted` service that is missing (existing text may be
// empty: a new file). Returns `existing_text` unchanged if nothing is missing.
StatusOr<std::string> EnsureServices(const std::string& existing_text, const std::vector<TraefikServiceDef>& wanted,
                                     const std::string& path);
// A generated service: loadBalancer with one server (`url`; TCP: `address` host:port from url).
TraefikServiceDef GeneratedService(const std::string& name, const std::string& url, bool tcp);

}  // namespace headshift
