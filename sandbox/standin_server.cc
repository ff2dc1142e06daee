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
#include <cstring>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "common/atomic_file.h"
#include "sandbox/node_json.h"
#include "sandbox/standin_server_impl.h"
#include "sandbox/wire.h"

namespace headshift::sandbox {

const char* LookupModeName(LookupMode m) { return m == LookupMode::kCached ? "cached" : "per-request"; }

StatusOr<LookupMode> ParseLookupMode(const std::string& s) {
  if (s == "per-request") return LookupMode::kPerRequest;
  if (s == "cached") return LookupMode::kCached;
  return Status::BadInput("lookup mode '" + s + "' is not one of per-request, cached");
}

namespace {

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

}  // namespace

std::shared_ptr<const NodeCache> BuildCache(std::vector<StandinNode> nodes) {
  auto c = std::make_shared<NodeCache>();
  for (auto& n : nodes) (*c)[n.node_key].push_back(std::move(n));
  return c;
}

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
      if (c.in.size() > kMaxHeaderBytes) SendAndClose(c, HttpResponse(431, "Request Header Fields Too Large", "text/plain", ""));
      return;
    }
    HttpRequest req;
    std::string head = c.in.substr(0, end);
    c.in.erase(0, end + 4);
    if (!ParseHttpHead(head, &req)) {
      SendAndClose(c, HttpResponse(400, "Bad Request", "text/plain", "malformed request\n"));
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
    SendAndClose(c, HttpResponse(200, "OK", "application/json", j.dump()));
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
    SendAndClose(c, HttpResponse(200, "OK", "application/json", j.dump()));
    return;
  }
  if (req.path == "/debug/batcher") {
    bool json = req.Header("accept").find("application/json") != std::string::npos;
    SendAndClose(c, HttpResponse(200, "OK", json ? "application/json" : "text/plain", BatcherDebug(json)));
    return;
  }
  if (req.path == "/ts2021") {
    if (Lower(req.Header("upgrade")) != wire::kUpgradeProtocol) {
      // headscale answers 500 when the proxy dropped the Upgrade header.
      SendAndClose(c, HttpResponse(500, "Internal Server Error", "text/plain",
                               "missing Upgrade: tailscale-control-protocol (proxy misconfigured?)\n"));
      return;
    }
    Send(c, std::string("HTTP/1.1 101 Switching Protocols\r\nUpgrade: ") + wire::kUpgradeProtocol +
                "\r\nConnection: upgrade\r\n\r\n");
    c.state = State::kAwaitMap;
    return;
  }
  // DELETE /api/v1/node/{id}, as headscale's DeleteNode: the node leaves the in-memory cache (cached
  // mode, like the NodeStore); its row is the database's business (headshift deletes it itself). An id
  // not cached answers headscale's gRPC-gateway NotFound shape.
  if (req.path.rfind("/api/v1/node/", 0) == 0 && req.method == "DELETE") {
    if (req.Header("authorization") != "Bearer " + opt_.api_key || opt_.api_key.empty()) {
      SendAndClose(c, HttpResponse(401, "Unauthorized", "text/plain", "Unauthorized"));
      return;
    }
    std::string id = req.path.substr(std::string("/api/v1/node/").size());
    bool found = false;
    if (cache_) {
      std::vector<StandinNode> kept;
      for (const auto& [k, v] : *cache_) {
        for (const auto& n : v) {
          if (std::to_string(n.id) == id) found = true;
          else kept.push_back(n);
        }
      }
      if (found) cache_ = BuildCache(std::move(kept));
    }
    if (!found) {
      SendAndClose(c, HttpResponse(404, "Not Found", "application/json", R"({"code":5,"message":"node not found"})"));
    } else {
      SendAndClose(c, HttpResponse(200, "OK", "application/json", "{}"));
    }
    return;
  }
  if (req.path == "/api/v1/node") {
    if (req.Header("authorization") != "Bearer " + opt_.api_key || opt_.api_key.empty()) {
      SendAndClose(c, HttpResponse(401, "Unauthorized", "text/plain", "Unauthorized"));
      return;
    }
    if (req.method != "GET") {
      SendAndClose(c, HttpResponse(405, "Method Not Allowed", "text/plain", ""));
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
      SendAndClose(c, HttpResponse(200, "OK", "application/json", NodesJson(nodes)));
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
          SendAndClose(*c, HttpResponse(500, "Internal Server Error", "text/plain", "database error\n"));
        } else {
          SendAndClose(*c, HttpResponse(200, "OK", "application/json", NodesJson(*r)));
        }
      });
    });
    return;
  }
  SendAndClose(c, HttpResponse(404, "Not Found", "text/plain", "404 page not found\n"));
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

StandinServer::StandinServer(StandinOptions options) : impl_(std::make_unique<Impl>(std::move(options))) {}
StandinServer::~StandinServer() = default;
Status StandinServer::Start() { return impl_->Start(); }
void StandinServer::Run() { impl_->Run(); }
void StandinServer::Stop() { impl_->Stop(); }
std::vector<std::string> StandinServer::bound() const { return impl_->bound(); }

}  // namespace headshift::sandbox
