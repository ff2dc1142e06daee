#include "sandbox/standin_server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <mutex>
#include <thread>
#include <unordered_map>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "common/atomic_file.h"
#include "sandbox/event_loop.h"
#include "sandbox/node_directory.h"
#include "sandbox/wire.h"

namespace headshift::sandbox {

const char* LookupModeName(LookupMode m) { return m == LookupMode::kCached ? "cached" : "per-request"; }

StatusOr<LookupMode> ParseLookupMode(const std::string& s) {
  if (s == "per-request") return LookupMode::kPerRequest;
  if (s == "cached") return LookupMode::kCached;
  return Status::BadInput("lookup mode '" + s + "' is not one of per-request, cached");
}

namespace {

constexpr size_t kMaxHeaderBytes = 16 * 1024;

std::string Lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string Trim(const std::string& s) {
  size_t b = s.find_first_not_of(" \t");
  if (b == std::string::npos) return "";
  size_t e = s.find_last_not_of(" \t");
  return s.substr(b, e - b + 1);
}

std::string UrlDecode(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && std::isxdigit(static_cast<unsigned char>(s[i + 1])) &&
        std::isxdigit(static_cast<unsigned char>(s[i + 2]))) {
      out += static_cast<char>(std::stoi(s.substr(i + 1, 2), nullptr, 16));
      i += 2;
    } else if (s[i] == '+') {
      out += ' ';
    } else {
      out += s[i];
    }
  }
  return out;
}

// Value of `key` in a query string ("a=1&user=x"), URL-decoded; "" if absent.
std::string QueryParam(const std::string& query, const std::string& key) {
  size_t pos = 0;
  while (pos <= query.size()) {
    size_t amp = query.find('&', pos);
    std::string kv = query.substr(pos, amp == std::string::npos ? std::string::npos : amp - pos);
    size_t eq = kv.find('=');
    if (UrlDecode(kv.substr(0, eq)) == key) return eq == std::string::npos ? "" : UrlDecode(kv.substr(eq + 1));
    if (amp == std::string::npos) break;
    pos = amp + 1;
  }
  return "";
}

struct HttpRequest {
  std::string method, path, query;
  std::unordered_map<std::string, std::string> headers;  // lower-case names
  std::string Header(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? "" : it->second;
  }
};

// Parses the head (request line + headers, without the final blank line). False if malformed.
bool ParseHead(const std::string& head, HttpRequest* req) {
  size_t eol = head.find("\r\n");
  std::string line = head.substr(0, eol);
  size_t sp1 = line.find(' ');
  size_t sp2 = line.rfind(' ');
  if (sp1 == std::string::npos || sp2 == sp1) return false;
  req->method = line.substr(0, sp1);
  std::string target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  if (line.compare(sp2 + 1, 5, "HTTP/") != 0) return false;
  size_t q = target.find('?');
  req->path = target.substr(0, q);
  req->query = q == std::string::npos ? "" : target.substr(q + 1);
  while (eol != std::string::npos) {
    size_t start = eol + 2;
    eol = head.find("\r\n", start);
    std::string h = head.substr(start, eol == std::string::npos ? std::string::npos : eol - start);
    if (h.empty()) continue;
    size_t colon = h.find(':');
    if (colon == std::string::npos) return false;
    req->headers[Lower(Trim(h.substr(0, colon)))] = Trim(h.substr(colon + 1));
  }
  return true;
}

std::string Response(int code, const char* reason, const std::string& content_type, const std::string& body) {
  return "HTTP/1.1 " + std::to_string(code) + " " + reason + "\r\nContent-Type: " + content_type +
         "\r\nContent-Length: " + std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body;
}

std::string RegisterMethodEnum(const std::string& m) {
  if (m == "authkey") return "REGISTER_METHOD_AUTH_KEY";
  if (m == "cli") return "REGISTER_METHOD_CLI";
  if (m == "oidc") return "REGISTER_METHOD_OIDC";
  return "REGISTER_METHOD_UNSPECIFIED";
}

nlohmann::json JsonArrayOrEmpty(const std::string& text) {
  auto j = nlohmann::json::parse(text, nullptr, false);
  return j.is_array() ? j : nlohmann::json::array();
}

std::string Rfc3339(int64_t wall_ms) {
  time_t s = static_cast<time_t>(wall_ms / 1000);
  tm t{};
  gmtime_r(&s, &t);
  char buf[64];
  snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", t.tm_year + 1900, t.tm_mon + 1, t.tm_mday,
           t.tm_hour, t.tm_min, t.tm_sec, static_cast<int>(wall_ms % 1000));
  return buf;
}

// Parses "ip:port" (IPv4) into a sockaddr.
bool ParseAddr(const std::string& s, sockaddr_in* out) {
  size_t colon = s.rfind(':');
  if (colon == std::string::npos) return false;
  std::memset(out, 0, sizeof *out);
  out->sin_family = AF_INET;
  if (inet_pton(AF_INET, s.substr(0, colon).c_str(), &out->sin_addr) != 1) return false;
  char* end = nullptr;
  long port = std::strtol(s.c_str() + colon + 1, &end, 10);
  if (*end != '\0' || port < 0 || port > 65535) return false;
  out->sin_port = htons(static_cast<uint16_t>(port));
  return true;
}

// The one thread that talks to PostgreSQL. Jobs run in order; results go back through the loop.
class DbWorker {
 public:
  explicit DbWorker(NodeDirectory dir) : dir_(std::move(dir)) {}
  ~DbWorker() { Shutdown(); }
  void Start() {
    thread_ = std::thread([this] { Loop(); });
  }
  void Submit(std::function<void(NodeDirectory&)> job) {
    std::lock_guard<std::mutex> l(mu_);
    jobs_.push_back(std::move(job));
    cv_.notify_one();
  }
  void Shutdown() {
    {
      std::lock_guard<std::mutex> l(mu_);
      stop_ = true;
      cv_.notify_one();
    }
    if (thread_.joinable()) thread_.join();
  }

 private:
  void Loop() {
    for (;;) {
      std::function<void(NodeDirectory&)> job;
      {
        std::unique_lock<std::mutex> l(mu_);
        cv_.wait(l, [this] { return stop_ || !jobs_.empty(); });
        if (stop_ && jobs_.empty()) return;
        job = std::move(jobs_.front());
        jobs_.pop_front();
      }
      job(dir_);
    }
  }
  NodeDirectory dir_;
  std::thread thread_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void(NodeDirectory&)>> jobs_;
  bool stop_ = false;
};

using NodeCache = std::unordered_map<std::string, std::vector<StandinNode>>;  // by node_key

std::shared_ptr<const NodeCache> BuildCache(std::vector<StandinNode> nodes) {
  auto c = std::make_shared<NodeCache>();
  for (auto& n : nodes) (*c)[n.node_key].push_back(std::move(n));
  return c;
}

}  // namespace

class StandinServer::Impl {
 public:
  explicit Impl(StandinOptions o) : opt_(std::move(o)), worker_(NodeDirectory(opt_.dsn, opt_.cluster_id)) {}
  ~Impl() {
    worker_.Shutdown();
    for (auto& [fd, c] : conns_) close(fd);
    for (int fd : listeners_) close(fd);
    if (sigfd_ >= 0) close(sigfd_);
  }

  Status Start();
  void Run() { loop_.Run(); }
  void Stop() { loop_.Stop(); }
  std::vector<std::string> bound() const { return bound_; }

 private:
  enum class State { kRequest, kAwaitMap, kLookup, kStreaming, kApiWaiting, kClosing };
  struct Conn {
    int fd = -1;
    uint64_t serial = 0;
    State state = State::kRequest;
    std::string in, out;
    std::string node_key, machine_key, endpoints;
    int64_t node_id = 0;
    bool close_after_flush = false;
    bool want_out = false;  // EPOLLOUT registered
  };
  struct Session {
    int count = 0;
    int64_t node_id = 0;
    std::string endpoints;
    uint64_t offline_timer = 0;
  };
  struct PendingLookup {
    int fd;
    uint64_t serial;
    std::string node_key, machine_key;
  };

  void OnAccept(int lfd);
  void OnConnEvent(int fd, uint32_t events);
  void Process(int fd, uint64_t serial);
  void HandleHttp(Conn& c, const HttpRequest& req);
  void HandleMap(Conn& c, const std::string& line);
  void Decide(Conn& c, const std::vector<StandinNode>* candidates, bool db_error);
  void Send(Conn& c, const std::string& data);
  void SendAndClose(Conn& c, const std::string& data);
  void Flush(Conn& c);
  void Close(Conn& c);
  Conn* Find(int fd, uint64_t serial);
  void KickLookups();
  void QueueWrite(NodeWrite w);
  void KickWrites();
  void KeepAliveTick();
  void OnSignal();
  void Reload();
  void DropEverything();
  std::string NodesJson(const std::vector<StandinNode>& nodes);
  bool Online(const std::string& node_key) const;

  StandinOptions opt_;
  EventLoop loop_;
  DbWorker worker_;
  std::vector<int> listeners_;
  std::vector<std::string> bound_;
  int sigfd_ = -1;
  uint64_t next_serial_ = 1;
  std::unordered_map<int, std::unique_ptr<Conn>> conns_;
  std::unordered_map<std::string, Session> sessions_;        // by node_key
  std::unordered_map<std::string, std::string> last_seen_;  // cached mode: node_key -> RFC 3339
  std::shared_ptr<const NodeCache> cache_;
  int reloads_ = 0;
  int64_t dropped_ = 0;  // connections closed by restart-like reloads
  std::vector<PendingLookup> pending_lookups_;
  bool lookup_in_flight_ = false;
  std::vector<NodeWrite> pending_writes_;
  bool write_in_flight_ = false;
  int streams_ = 0;
};

Status StandinServer::Impl::Start() {
  if (opt_.cluster_id.empty()) return Status::BadInput("--cluster-id is required");
  if (opt_.dsn.empty()) return Status::BadInput("a database DSN is required (--dsn-file)");
  if (opt_.listen.empty()) opt_.listen.push_back("127.0.0.1:0");
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }

  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGHUP);
  sigaddset(&mask, SIGINT);
  sigaddset(&mask, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &mask, nullptr);
  sigfd_ = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
  loop_.Add(sigfd_, EPOLLIN, [this](uint32_t) { OnSignal(); });

  for (const auto& a : opt_.listen) {
    sockaddr_in sa{};
    if (!ParseAddr(a, &sa)) return Status::BadInput("listen address '" + a + "' is not IPv4 ip:port");
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0 || listen(fd, 4096) != 0) {
      std::string err = std::strerror(errno);
      close(fd);
      return Status::Failed("cannot listen on " + a + ": " + err);
    }
    socklen_t len = sizeof sa;
    getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len);
    char ip[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, &sa.sin_addr, ip, sizeof ip);
    bound_.push_back(std::string(ip) + ":" + std::to_string(ntohs(sa.sin_port)));
    listeners_.push_back(fd);
    loop_.Add(fd, EPOLLIN, [this, fd](uint32_t) { OnAccept(fd); });
  }

  if (opt_.mode == LookupMode::kCached) {
    // headscale >= 0.27 loads every node once at start; failing to load is failing to start.
    NodeDirectory dir(opt_.dsn, opt_.cluster_id);
    auto all = dir.ListAll();
    if (!all.ok()) return all.status().WithContext("loading nodes of cluster " + opt_.cluster_id);
    spdlog::info("stand-in cluster {}: cached {} nodes", opt_.cluster_id, all->size());
    cache_ = BuildCache(std::move(*all));
  }
  worker_.Start();

  loop_.After(opt_.keepalive_ms, [this] { KeepAliveTick(); });

  if (!opt_.ready_file.empty()) {
    nlohmann::json j = {{"pid", getpid()}, {"cluster_id", opt_.cluster_id}, {"listen", bound_},
                        {"mode", LookupModeName(opt_.mode)}};
    HS_RETURN_IF_ERROR(WriteFileAtomically(opt_.ready_file, j.dump() + "\n", 0644));
  }
  spdlog::info("headscale stand-in cluster {} ({}) serving on {}", opt_.cluster_id, LookupModeName(opt_.mode),
               bound_.front());
  return Status::Ok();
}

void StandinServer::Impl::OnSignal() {
  signalfd_siginfo si{};
  while (read(sigfd_, &si, sizeof si) == static_cast<ssize_t>(sizeof si)) {
    if (si.ssi_signo == SIGHUP) {
      Reload();
    } else {
      spdlog::info("stand-in cluster {}: signal {}, stopping", opt_.cluster_id, si.ssi_signo);
      loop_.Stop();
    }
  }
}

void StandinServer::Impl::Reload() {
  if (opt_.mode != LookupMode::kCached) {
    ++reloads_;  // nothing cached: a reload is a no-op, as a restart of a per-request server would be
    if (opt_.reload_drops_streams) DropEverything();
    return;
  }
  worker_.Submit([this](NodeDirectory& dir) {
    auto all = dir.ListAll();
    loop_.Post([this, all = std::move(all)]() mutable {
      if (!all.ok()) {
        spdlog::error("stand-in cluster {}: reload failed: {}", opt_.cluster_id, all.status().ToString());
        return;
      }
      spdlog::info("stand-in cluster {}: reloaded {} nodes", opt_.cluster_id, all->size());
      cache_ = BuildCache(std::move(*all));
      ++reloads_;
      // A restart serves the new rows and has dropped every connection at the same moment.
      if (opt_.reload_drops_streams) DropEverything();
    });
  });
}

// What a restarted headscale has lost: every connection (streams, API requests, lookups in flight)
// and every session; all nodes start offline (state.NewState), with no grace period.
void StandinServer::Impl::DropEverything() {
  int64_t n = 0;
  for (auto& [fd, c] : conns_) {
    loop_.Remove(fd);
    close(fd);
    ++n;
  }
  conns_.clear();
  for (auto& [key, s] : sessions_) {
    if (s.offline_timer) loop_.CancelTimer(s.offline_timer);
  }
  sessions_.clear();
  pending_lookups_.clear();
  streams_ = 0;
  dropped_ += n;
  spdlog::info("stand-in cluster {}: reload acts as a restart: dropped {} connections", opt_.cluster_id, n);
}

void StandinServer::Impl::OnAccept(int lfd) {
  for (;;) {
    int fd = accept4(lfd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EMFILE || errno == ENFILE) spdlog::warn("stand-in: out of file descriptors");
      return;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    auto c = std::make_unique<Conn>();
    c->fd = fd;
    c->serial = next_serial_++;
    conns_[fd] = std::move(c);
    loop_.Add(fd, EPOLLIN | EPOLLRDHUP, [this, fd](uint32_t ev) { OnConnEvent(fd, ev); });
  }
}

StandinServer::Impl::Conn* StandinServer::Impl::Find(int fd, uint64_t serial) {
  auto it = conns_.find(fd);
  if (it == conns_.end() || it->second->serial != serial) return nullptr;
  return it->second.get();
}

void StandinServer::Impl::OnConnEvent(int fd, uint32_t events) {
  auto it = conns_.find(fd);
  if (it == conns_.end()) return;
  Conn& c = *it->second;
  if (events & EPOLLOUT) {
    Flush(c);
    if (!conns_.count(fd)) return;
  }
  if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
    char buf[16384];
    for (;;) {
      ssize_t n = read(fd, buf, sizeof buf);
      if (n > 0) {
        if (c.state != State::kStreaming && c.state != State::kClosing) c.in.append(buf, static_cast<size_t>(n));
        continue;
      }
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
      Close(c);  // EOF or error (RST)
      return;
    }
    Process(fd, c.serial);
  }
}

void StandinServer::Impl::Process(int fd, uint64_t serial) {
  Conn* cp = Find(fd, serial);
  if (cp && cp->state == State::kRequest) {
    Conn& c = *cp;
    size_t end = c.in.find("\r\n\r\n");
    if (end == std::string::npos) {
      if (c.in.size() > kMaxHeaderBytes) SendAndClose(c, Response(431, "Request Header Fields Too Large", "text/plain", ""));
      return;
    }
    HttpRequest req;
    std::string head = c.in.substr(0, end);
    c.in.erase(0, end + 4);
    if (!ParseHead(head, &req)) {
      SendAndClose(c, Response(400, "Bad Request", "text/plain", "malformed request\n"));
      return;
    }
    HandleHttp(c, req);
    cp = Find(fd, serial);  // HandleHttp may have closed it
  }
  if (cp && cp->state == State::kAwaitMap) {
    Conn& c = *cp;
    size_t nl = c.in.find('\n');
    if (nl == std::string::npos) {
      if (c.in.size() > wire::kMaxLine) SendAndClose(c, "ERR 400 line too long\n");
      return;
    }
    std::string line = c.in.substr(0, nl);
    c.in.clear();
    HandleMap(c, line);
  }
}

void StandinServer::Impl::HandleHttp(Conn& c, const HttpRequest& req) {
  if (req.path == "/key") {
    nlohmann::json j = {{"legacyPublicKey", "mkey:" + std::string(64, '0')}, {"publicKey", opt_.noise_key}};
    SendAndClose(c, Response(200, "OK", "application/json", j.dump()));
    return;
  }
  if (req.path == "/health") {
    nlohmann::json j = {{"status", "pass"},
                        {"cluster_id", opt_.cluster_id},
                        {"mode", LookupModeName(opt_.mode)},
                        {"reloads", reloads_},
                        {"cached_nodes", cache_ ? static_cast<int64_t>(cache_->size()) : -1},
                        {"streams", streams_},
                        {"dropped", dropped_}};
    SendAndClose(c, Response(200, "OK", "application/json", j.dump()));
    return;
  }
  if (req.path == "/ts2021") {
    if (Lower(req.Header("upgrade")) != wire::kUpgradeProtocol) {
      // headscale answers 500 when the proxy dropped the Upgrade header.
      SendAndClose(c, Response(500, "Internal Server Error", "text/plain",
                               "missing Upgrade: tailscale-control-protocol (proxy misconfigured?)\n"));
      return;
    }
    Send(c, std::string("HTTP/1.1 101 Switching Protocols\r\nUpgrade: ") + wire::kUpgradeProtocol +
                "\r\nConnection: upgrade\r\n\r\n");
    c.state = State::kAwaitMap;
    return;
  }
  if (req.path == "/api/v1/node") {
    if (req.Header("authorization") != "Bearer " + opt_.api_key || opt_.api_key.empty()) {
      SendAndClose(c, Response(401, "Unauthorized", "text/plain", "Unauthorized"));
      return;
    }
    if (req.method != "GET") {
      SendAndClose(c, Response(405, "Method Not Allowed", "text/plain", ""));
      return;
    }
    std::string user = QueryParam(req.query, "user");
    if (cache_) {  // cached mode: the API answers from memory, like the NodeStore
      std::vector<StandinNode> nodes;
      for (const auto& [k, v] : *cache_) {
        for (const auto& n : v) {
          if (user.empty() || n.user_name == user) nodes.push_back(n);
        }
      }
      std::sort(nodes.begin(), nodes.end(), [](const auto& a, const auto& b) { return a.id < b.id; });
      SendAndClose(c, Response(200, "OK", "application/json", NodesJson(nodes)));
      return;
    }
    c.state = State::kApiWaiting;
    int fd = c.fd;
    uint64_t serial = c.serial;
    worker_.Submit([this, fd, serial, user](NodeDirectory& dir) {
      auto r = user.empty() ? dir.ListAll() : dir.ListByUser(user);
      loop_.Post([this, fd, serial, r = std::move(r)] {
        Conn* c = Find(fd, serial);
        if (!c) return;
        if (!r.ok()) {
          SendAndClose(*c, Response(500, "Internal Server Error", "text/plain", "database error\n"));
        } else {
          SendAndClose(*c, Response(200, "OK", "application/json", NodesJson(*r)));
        }
      });
    });
    return;
  }
  SendAndClose(c, Response(404, "Not Found", "text/plain", "404 page not found\n"));
}

bool StandinServer::Impl::Online(const std::string& node_key) const {
  return sessions_.count(node_key) > 0;  // a session lives until its grace period ends
}

std::string StandinServer::Impl::NodesJson(const std::vector<StandinNode>& nodes) {
  nlohmann::json arr = nlohmann::json::array();
  for (const auto& n : nodes) {
    nlohmann::json ips = nlohmann::json::array();
    if (!n.ipv4.empty()) ips.push_back(n.ipv4);
    if (!n.ipv6.empty()) ips.push_back(n.ipv6);
    std::string last_seen = n.last_seen;
    if (auto it = last_seen_.find(n.node_key); it != last_seen_.end()) last_seen = it->second;
    nlohmann::json j = {
        {"id", std::to_string(n.id)},
        {"machineKey", n.machine_key},
        {"nodeKey", n.node_key},
        {"discoKey", n.disco_key},
        {"ipAddresses", ips},
        {"name", n.hostname},
        {"user",
         {{"id", n.user_id},
          {"name", n.user_name},
          {"createdAt", n.user_created_at},
          {"displayName", n.user_display_name},
          {"email", n.user_email},
          {"providerId", n.user_provider_id},
          {"provider", n.user_provider},
          {"profilePicUrl", n.user_picture}}},
        {"createdAt", n.created_at},
        {"registerMethod", RegisterMethodEnum(n.register_method)},
        {"givenName", n.given_name},
        {"online", Online(n.node_key)},
        {"approvedRoutes", JsonArrayOrEmpty(n.approved_routes)},
        {"availableRoutes", nlohmann::json::array()},
        {"subnetRoutes", nlohmann::json::array()},
        {"tags", JsonArrayOrEmpty(n.tags)},
    };
    if (!last_seen.empty()) j["lastSeen"] = last_seen;
    if (n.expiry_ms != 0) j["expiry"] = Rfc3339(n.expiry_ms);
    arr.push_back(std::move(j));
  }
  return nlohmann::json{{"nodes", arr}}.dump();
}

void StandinServer::Impl::HandleMap(Conn& c, const std::string& raw) {
  std::string line = raw;
  if (!line.empty() && line.back() == '\r') line.pop_back();
  // MAP <nodekey> <mkey> <endpoints-json>
  std::vector<std::string> parts;
  size_t pos = 0;
  while (parts.size() < 3) {
    size_t sp = line.find(' ', pos);
    if (sp == std::string::npos) break;
    parts.push_back(line.substr(pos, sp - pos));
    pos = sp + 1;
  }
  parts.push_back(line.substr(pos));
  if (parts.size() < 3 || parts[0] != wire::kMap) {
    SendAndClose(c, "ERR 400 expected MAP <nodekey> <mkey> [endpoints]\n");
    return;
  }
  c.node_key = parts[1];
  c.machine_key = parts[2];
  c.endpoints = parts.size() > 3 ? parts[3] : "[]";
  c.state = State::kLookup;
  if (cache_) {
    auto it = cache_->find(c.node_key);
    Decide(c, it == cache_->end() ? nullptr : &it->second, false);
    return;
  }
  pending_lookups_.push_back({c.fd, c.serial, c.node_key, c.machine_key});
  KickLookups();
}

void StandinServer::Impl::KickLookups() {
  if (lookup_in_flight_ || pending_lookups_.empty()) return;
  lookup_in_flight_ = true;
  auto batch = std::make_shared<std::vector<PendingLookup>>(std::move(pending_lookups_));
  pending_lookups_.clear();
  std::vector<std::string> keys;
  for (const auto& p : *batch) keys.push_back(p.node_key);
  worker_.Submit([this, batch, keys](NodeDirectory& dir) {
    auto r = dir.Lookup(keys);
    loop_.Post([this, batch, r = std::move(r)] {
      lookup_in_flight_ = false;
      NodeCache found;
      if (r.ok()) {
        for (const auto& n : *r) found[n.node_key].push_back(n);
      } else {
        spdlog::error("stand-in cluster {}: node lookup failed: {}", opt_.cluster_id, r.status().ToString());
      }
      for (const auto& p : *batch) {
        Conn* c = Find(p.fd, p.serial);
        if (!c) continue;
        auto it = found.find(p.node_key);
        Decide(*c, it == found.end() ? nullptr : &it->second, !r.ok());
      }
      KickLookups();
    });
  });
}

void StandinServer::Impl::Decide(Conn& c, const std::vector<StandinNode>* candidates, bool db_error) {
  if (db_error) {
    SendAndClose(c, "ERR 500 database error\n");
    return;
  }
  const StandinNode* node = nullptr;
  if (candidates) {
    int64_t now = WallMs();
    for (const auto& n : *candidates) {
      if (n.machine_key == c.machine_key && !n.ExpiredAt(now)) {
        node = &n;
        break;
      }
    }
  }
  if (!node) {
    // headscale getAndValidateNode: unknown node key or machine key mismatch -> 404 "node not found".
    SendAndClose(c, "ERR 404 node not found\n");
    return;
  }
  c.node_id = node->id;
  c.state = State::kStreaming;
  ++streams_;
  Session& s = sessions_[c.node_key];
  if (s.offline_timer) {
    loop_.CancelTimer(s.offline_timer);
    s.offline_timer = 0;
  }
  ++s.count;
  s.node_id = node->id;
  s.endpoints = c.endpoints;
  if (c.endpoints != node->endpoints) QueueWrite({node->id, 0, c.endpoints});
  Send(c, std::string(wire::kOk) + " " + opt_.cluster_id + " " + std::to_string(node->id) + "\n");
}

void StandinServer::Impl::QueueWrite(NodeWrite w) {
  pending_writes_.push_back(std::move(w));
  KickWrites();
}

void StandinServer::Impl::KickWrites() {
  if (write_in_flight_ || pending_writes_.empty()) return;
  write_in_flight_ = true;
  auto batch = std::make_shared<std::vector<NodeWrite>>(std::move(pending_writes_));
  pending_writes_.clear();
  worker_.Submit([this, batch](NodeDirectory& dir) {
    Status st = dir.Write(*batch);
    loop_.Post([this, st] {
      if (!st.ok()) spdlog::error("stand-in cluster {}: node write failed: {}", opt_.cluster_id, st.ToString());
      write_in_flight_ = false;
      KickWrites();
    });
  });
}

void StandinServer::Impl::KeepAliveTick() {
  std::string ka = std::string(wire::kKeepAlive) + " " + opt_.cluster_id + " " + std::to_string(WallMs()) + "\n";
  std::vector<Conn*> streaming;
  for (auto& [fd, c] : conns_) {
    if (c->state == State::kStreaming) streaming.push_back(c.get());
  }
  for (Conn* c : streaming) {
    if (conns_.count(c->fd) && conns_[c->fd].get() == c) Send(*c, ka);
  }
  loop_.After(opt_.keepalive_ms, [this] { KeepAliveTick(); });
}

void StandinServer::Impl::Send(Conn& c, const std::string& data) {
  c.out += data;
  Flush(c);
}

void StandinServer::Impl::SendAndClose(Conn& c, const std::string& data) {
  c.close_after_flush = true;
  if (c.state != State::kStreaming) c.state = State::kClosing;
  Send(c, data);
}

void StandinServer::Impl::Flush(Conn& c) {
  while (!c.out.empty()) {
    ssize_t n = send(c.fd, c.out.data(), c.out.size(), MSG_NOSIGNAL);
    if (n > 0) {
      c.out.erase(0, static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      if (!c.want_out) loop_.Modify(c.fd, EPOLLIN | EPOLLRDHUP | EPOLLOUT);
      c.want_out = true;
      return;
    }
    Close(c);
    return;
  }
  if (c.want_out) loop_.Modify(c.fd, EPOLLIN | EPOLLRDHUP);
  c.want_out = false;
  if (c.close_after_flush) Close(c);
}

void StandinServer::Impl::Close(Conn& c) {
  int fd = c.fd;
  if (c.state == State::kStreaming) {
    --streams_;
    auto it = sessions_.find(c.node_key);
    if (it != sessions_.end() && --it->second.count == 0) {
      // headscale: wait for a reconnect, then mark offline and persist last_seen + endpoints.
      std::string key = c.node_key;
      it->second.offline_timer = loop_.After(opt_.disconnect_grace_ms, [this, key] {
        auto s = sessions_.find(key);
        if (s == sessions_.end() || s->second.count > 0) return;
        int64_t now = WallMs();
        QueueWrite({s->second.node_id, now, s->second.endpoints});
        if (cache_) last_seen_[key] = Rfc3339(now);
        sessions_.erase(s);
      });
    }
  }
  loop_.Remove(fd);
  close(fd);
  conns_.erase(fd);
}

StandinServer::StandinServer(StandinOptions options) : impl_(std::make_unique<Impl>(std::move(options))) {}
StandinServer::~StandinServer() = default;
Status StandinServer::Start() { return impl_->Start(); }
void StandinServer::Run() { impl_->Run(); }
void StandinServer::Stop() { impl_->Stop(); }
std::vector<std::string> StandinServer::bound() const { return impl_->bound(); }

}  // namespace headshift::sandbox
