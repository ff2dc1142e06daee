#include "tests/integration/proxycfg/fake_traefik_api.h"

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <yaml-cpp/yaml.h>

namespace headshift::testing {
namespace fs = std::filesystem;
namespace {

nlohmann::json ToJson(const YAML::Node& n) {
  if (n.IsMap()) {
    nlohmann::json j = nlohmann::json::object();
    for (auto it = n.begin(); it != n.end(); ++it) j[it->first.Scalar()] = ToJson(it->second);
    return j;
  }
  if (n.IsSequence()) {
    nlohmann::json j = nlohmann::json::array();
    for (const auto& x : n) j.push_back(ToJson(x));
    return j;
  }
  if (n.IsScalar()) {
    if (n.Scalar() == "true") return true;
    if (n.Scalar() == "false") return false;
    return n.Scalar();
  }
  return nullptr;
}

std::string Unqualified(const std::string& s) {
  auto at = s.find('@');
  return at == std::string::npos ? s : s.substr(0, at);
}

}  // namespace

FakeTraefikApi::FakeTraefikApi(std::string dir, int delay_ms) : dir_(std::move(dir)), delay_ms_(delay_ms) {
  server_.Get(R"(/api/(http|tcp)/(routers|services)/(.+))", [this](const httplib::Request& req, httplib::Response& res) {
    ++requests_;
    std::lock_guard<std::mutex> l(mu_);
    if (!token_.empty() && req.get_header_value("Authorization") != "Bearer " + token_) {
      res.status = 401;
      res.set_content("401 Unauthorized\n", "text/plain");
      return;
    }
    auto it = objects_.find(req.path);
    if (it == objects_.end()) {
      res.status = 404;
      std::string kind = req.matches[2] == "routers" ? "router" : "service";
      res.set_content(kind + " not found: " + std::string(req.matches[3]) + "\n", "text/plain");
      return;
    }
    nlohmann::json j = it->second;
    if (j.contains("serverStatus")) {
      for (auto& [server, state] : j["serverStatus"].items()) state = down_.count(server) ? "DOWN" : "UP";
    }
    res.set_content(j.dump(), "application/json");
  });
  port_ = server_.bind_to_any_port("127.0.0.1");
  server_thread_ = std::thread([this] { server_.listen_after_bind(); });
  {
    std::lock_guard<std::mutex> l(mu_);
    seen_ = ReadDir();
    Apply(seen_);  // the state at "Traefik start"
  }
  poll_thread_ = std::thread([this] { Poll(); });
  while (!server_.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(5));
}

FakeTraefikApi::~FakeTraefikApi() {
  stop_ = true;
  server_.stop();
  server_thread_.join();
  poll_thread_.join();
}

void FakeTraefikApi::RequireBearer(const std::string& token) {
  std::lock_guard<std::mutex> l(mu_);
  token_ = token;
}

void FakeTraefikApi::SetServerDown(const std::string& server_url) {
  std::lock_guard<std::mutex> l(mu_);
  down_.insert(server_url);
}

void FakeTraefikApi::SetDelay(int delay_ms) {
  std::lock_guard<std::mutex> l(mu_);
  delay_ms_ = delay_ms;
}

bool FakeTraefikApi::WaitApplied(int timeout_ms) {
  auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (std::chrono::steady_clock::now() < end) {
    {
      std::lock_guard<std::mutex> l(mu_);
      if (applied_ == ReadDir()) return true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

std::map<std::string, std::string> FakeTraefikApi::ReadDir() const {
  std::map<std::string, std::string> files;  // relative path -> content, sorted like Traefik's walk
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(dir_, ec); it != fs::recursive_directory_iterator(); ++it) {
    std::string ext = it->path().extension().string();
    if (!it->is_regular_file() || (ext != ".yml" && ext != ".yaml")) continue;
    std::ifstream in(it->path());
    std::stringstream ss;
    ss << in.rdbuf();
    files[fs::relative(it->path(), dir_).string()] = ss.str();
  }
  return files;
}

void FakeTraefikApi::Poll() {
  std::map<std::string, std::string> pending;
  auto apply_at = std::chrono::steady_clock::time_point::max();
  while (!stop_) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    std::lock_guard<std::mutex> l(mu_);
    auto now_files = ReadDir();
    if (now_files != seen_) {  // a change event: applied after the delay; newer changes replace it
      seen_ = now_files;
      pending = now_files;
      apply_at = std::chrono::steady_clock::now() + std::chrono::milliseconds(delay_ms_);
    }
    if (std::chrono::steady_clock::now() >= apply_at) {
      Apply(pending);
      apply_at = std::chrono::steady_clock::time_point::max();
    }
  }
}

void FakeTraefikApi::Apply(const std::map<std::string, std::string>& files) {
  std::map<std::string, std::map<std::string, YAML::Node>> defs;  // "http.routers" -> name -> node
  for (const auto& [name, text] : files) {
    YAML::Node root;
    try {
      root = YAML::Load(text);
    } catch (const YAML::Exception&) {
      return;  // like Traefik: a broken file keeps the last good configuration
    }
    for (const char* proto : {"http", "tcp"}) {
      for (const char* kind : {"routers", "services", "middlewares"}) {
        if (!root.IsMap() || !root[proto] || !root[proto][kind] || !root[proto][kind].IsMap()) continue;
        for (auto it = root[proto][kind].begin(); it != root[proto][kind].end(); ++it) {
          auto& slot = defs[std::string(proto) + "." + kind];
          slot.emplace(it->first.Scalar(), it->second);  // first definition wins
        }
      }
    }
  }
  objects_.clear();
  applied_ = files;
  for (const char* proto : {"http", "tcp"}) {
    std::string p = proto;
    std::map<std::string, std::vector<std::string>> used_by;
    for (const auto& [name, node] : defs[p + ".routers"]) {
      nlohmann::json r = ToJson(node);
      r["name"] = name + "@file";
      r["provider"] = "file";
      std::vector<std::string> errors;
      std::string service = r.value("service", "");
      if (!defs[p + ".services"].count(Unqualified(service))) {
        errors.push_back("the service \"" + Unqualified(service) + "@file\" does not exist");
      } else {
        used_by[Unqualified(service)].push_back(name + "@file");
      }
      if (r.contains("middlewares")) {
        for (const auto& m : r["middlewares"]) {
          std::string mw = m.get<std::string>();
          if (!defs[p + ".middlewares"].count(Unqualified(mw))) {
            errors.push_back("middleware \"" + Unqualified(mw) + "@file\" does not exist");
          }
        }
      }
      r["status"] = errors.empty() ? "enabled" : "disabled";
      if (!errors.empty()) r["error"] = errors;
      if (r.contains("entryPoints")) r["using"] = r["entryPoints"];
      objects_["/api/" + p + "/routers/" + name + "@file"] = r;
    }
    for (const auto& [name, node] : defs[p + ".services"]) {
      nlohmann::json s = ToJson(node);
      s["name"] = name + "@file";
      s["provider"] = "file";
      s["status"] = "enabled";
      s["type"] = "loadbalancer";
      s["usedBy"] = used_by[name];
      if (p == "http" && s.contains("loadBalancer") && s["loadBalancer"].contains("servers")) {
        nlohmann::json st = nlohmann::json::object();
        for (const auto& server : s["loadBalancer"]["servers"]) st[server.value("url", "")] = "UP";
        s["serverStatus"] = st;
      }
      objects_["/api/" + p + "/services/" + name + "@file"] = s;
    }
  }
}

}  // namespace headshift::testing
