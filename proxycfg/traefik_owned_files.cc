#include "proxycfg/traefik_owned_files.h"

#include <cctype>

namespace headshift {
namespace {

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

YAML::Node ChildCi(const YAML::Node& map, const std::string& key) {
  if (!map.IsMap()) return YAML::Node();
  for (auto it = map.begin(); it != map.end(); ++it) {
    if (it->first.IsScalar() && Lower(it->first.Scalar()) == key) return it->second;
  }
  return YAML::Node();
}

std::string Emit(const std::string& header, const YAML::Node& root) {
  YAML::Emitter out;
  out.SetIndent(2);
  out << root;
  std::string body = out.c_str();
  return header + body + (body.empty() || body.back() != '\n' ? "\n" : "");
}

std::string TenantHeader(const std::string& tenant) {
  return "# Managed by headshift: route of tenant " + tenant +
         ".\n# Change the service with `headshift route set`; other fields you edit here are kept.\n";
}

// Host(`h`) — the tenant name is validated, so it cannot contain a backtick.
YAML::Node RouterNode(const TraefikRouterSpec& spec, const std::string& service, bool tcp) {
  YAML::Node r(YAML::NodeType::Map);
  r["rule"] = std::string(tcp ? "HostSNI(`" : "Host(`") + spec.host + "`)";
  r["service"] = service;
  if (!spec.entry_points.empty()) {
    YAML::Node eps(YAML::NodeType::Sequence);
    for (const auto& e : spec.entry_points) eps.push_back(e);
    r["entryPoints"] = eps;
  }
  if (tcp) {
    r["tls"]["passthrough"] = true;
  } else if (spec.tls || !spec.cert_resolver.empty()) {
    YAML::Node tls(YAML::NodeType::Map);
    if (!spec.cert_resolver.empty()) tls["certResolver"] = spec.cert_resolver;
    r["tls"] = tls;
  }
  return r;
}

StatusOr<YAML::Node> Load(const std::string& text, const std::string& path) {
  try {
    YAML::Node root = YAML::Load(text);
    if (root.IsNull()) return YAML::Node(YAML::NodeType::Map);
    if (!root.IsMap()) return Status::Failed(path + ": expected a YAML mapping at the top level");
    return root;
  } catch (const YAML::Exception& e) {
    return Status::Failed(path + ": does not parse: " + e.what(),
                          "headshift owns this file; fix it or delete it and run `headshift route set` again");
  }
}

}  // namespace

TraefikOwnedFiles::TraefikOwnedFiles(std::string dir, std::string prefix)
    : dir_(std::move(dir)), prefix_(std::move(prefix)) {
  while (dir_.size() > 1 && dir_.back() == '/') dir_.pop_back();
}

std::string TraefikOwnedFiles::TenantFile(const std::string& tenant) const {
  return dir_ + "/" + prefix_ + "tenant-" + tenant + ".yml";
}

std::string TraefikOwnedFiles::ServicesFile() const { return dir_ + "/" + prefix_ + "services.yml"; }

std::optional<std::string> TraefikOwnedFiles::TenantOfFile(const std::string& path) const {
  std::string head = dir_ + "/" + prefix_ + "tenant-";
  const std::string tail = ".yml";
  if (path.size() <= head.size() + tail.size() || path.compare(0, head.size(), head) != 0 ||
      path.compare(path.size() - tail.size(), tail.size(), tail) != 0) {
    return std::nullopt;
  }
  std::string tenant = path.substr(head.size(), path.size() - head.size() - tail.size());
  if (tenant.find('/') != std::string::npos) return std::nullopt;
  return tenant;
}

std::string RenderTenantFile(const std::string& tenant, const TraefikRouterSpec& spec, const std::string& service) {
  YAML::Node root(YAML::NodeType::Map);
  root["http"]["routers"][spec.router] = RouterNode(spec, service, false);
  if (spec.tcp_passthrough) root["tcp"]["routers"][spec.router] = RouterNode(spec, service, true);
  return Emit(TenantHeader(tenant), root);
}

std::string RenderAdoptedTenantFile(const std::string& tenant, const std::string& router, const YAML::Node& http,
                                    const YAML::Node& tcp, const std::string& from_file) {
  YAML::Node root(YAML::NodeType::Map);
  root["http"]["routers"][router] = YAML::Clone(http);
  if (tcp && !tcp.IsNull()) root["tcp"]["routers"][router] = YAML::Clone(tcp);
  return Emit(TenantHeader(tenant) + "# Adopted from " + from_file + " by `headshift route adopt`.\n", root);
}

StatusOr<std::string> TenantFileService(const std::string& text, const std::string& router, const std::string& path) {
  auto root = Load(text, path);
  if (!root.ok()) return root.status();
  YAML::Node r = ChildCi(ChildCi(*root, "http"), "routers")[router];
  if (!r || !r.IsMap()) return Status::Failed(path + ": has no http.routers." + router);
  YAML::Node s = ChildCi(r, "service");
  if (!s || !s.IsScalar()) return Status::Failed(path + ": http.routers." + router + " has no service");
  return s.Scalar();
}

StatusOr<std::string> TenantFileWithService(const std::string& text, const std::string& router,
                                            const std::string& service, const std::string& path) {
  auto root = Load(text, path);
  if (!root.ok()) return root.status();
  bool found = false;
  for (const char* proto : {"http", "tcp"}) {
    YAML::Node routers = ChildCi(ChildCi(*root, proto), "routers");
    if (!routers.IsMap() || !routers[router] || !routers[router].IsMap()) continue;
    YAML::Node r = routers[router];
    bool set = false;
    for (auto it = r.begin(); it != r.end(); ++it) {
      if (Lower(it->first.Scalar()) == "service") {
        it->second = service;
        set = true;
      }
    }
    if (!set) r["service"] = service;
    found = true;
  }
  if (!found) return Status::Failed(path + ": has no http.routers." + router);
  // Keep the file's own leading comment lines (our header, or an operator's note).
  std::string header;
  size_t pos = 0;
  while (pos < text.size() && text[pos] == '#') {
    size_t nl = text.find('\n', pos);
    if (nl == std::string::npos) break;
    header += text.substr(pos, nl - pos + 1);
    pos = nl + 1;
  }
  return Emit(header, *root);
}

StatusOr<std::string> EnsureServices(const std::string& existing_text, const std::vector<TraefikServiceDef>& wanted,
                                     const std::string& path) {
  auto root = Load(existing_text, path);
  if (!root.ok()) return root.status();
  bool changed = false;
  for (const auto& w : wanted) {
    for (const char* proto : {"http", "tcp"}) {
      const YAML::Node& def = std::string(proto) == "http" ? w.http : w.tcp;
      if (!def || def.IsNull()) continue;
      YAML::Node services = ChildCi(ChildCi(*root, proto), "services");
      if (services.IsMap() && services[w.name]) continue;
      (*root)[proto]["services"][w.name] = YAML::Clone(def);
      changed = true;
    }
  }
  if (!changed) return existing_text;
  std::string header =
      "# Managed by headshift: one service per cluster (clusters[].backend -> upstream_url).\n"
      "# headshift only adds missing services; entries here are never rewritten.\n";
  if (!existing_text.empty() && existing_text[0] == '#') {
    header.clear();
    size_t pos = 0;
    while (pos < existing_text.size() && existing_text[pos] == '#') {
      size_t nl = existing_text.find('\n', pos);
      if (nl == std::string::npos) break;
      header += existing_text.substr(pos, nl - pos + 1);
      pos = nl + 1;
    }
  }
  return Emit(header, *root);
}

TraefikServiceDef GeneratedService(const std::string& name, const std::string& url, bool tcp) {
  TraefikServiceDef d;
  d.name = name;
  d.http = YAML::Node(YAML::NodeType::Map);
  YAML::Node server(YAML::NodeType::Map);
  server["url"] = url;
  d.http["loadBalancer"]["servers"].push_back(server);
  d.http["loadBalancer"]["passHostHeader"] = true;
  if (tcp) {
    // host:port from the URL (default port from the scheme).
    std::string rest = url.substr(url.find("://") + 3);
    rest = rest.substr(0, rest.find('/'));
    size_t at = rest.rfind('@');
    if (at != std::string::npos) rest = rest.substr(at + 1);
    size_t colon = rest.rfind(':');
    size_t bracket = rest.rfind(']');  // IPv6 literal: [::1]:8080
    bool has_port = colon != std::string::npos && (bracket == std::string::npos || colon > bracket);
    if (!has_port) rest += url.rfind("https://", 0) == 0 ? ":443" : ":80";
    d.tcp = YAML::Node(YAML::NodeType::Map);
    YAML::Node s(YAML::NodeType::Map);
    s["address"] = rest;
    d.tcp["loadBalancer"]["servers"].push_back(s);
  }
  return d;
}

}  // namespace headshift
