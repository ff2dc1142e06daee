#include "sandbox/fleet.h"

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

#include <cstring>

#include <spdlog/spdlog.h>

#include "sandbox/fleet_impl.h"
#include "sandbox/wire.h"

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

namespace headshift::sandbox {

namespace {

bool ParseAddr(const std::string& s, sockaddr_in* out) {
  size_t colon = s.rfind(':');
  std::memset(out, 0, sizeof *out);
  out->sin_family = AF_INET;
  std::string ip = colon == std::string::npos ? s : s.substr(0, colon);
  if (inet_pton(AF_INET, ip.c_str(), &out->sin_addr) != 1) return false;
  if (colon != std::string::npos) out->sin_port = htons(static_cast<uint16_t>(std::atoi(s.c_str() + colon + 1)));
  return true;
}

std::string Base64(const std::string& in) {
  static const char* t = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    uint32_t v = (static_cast<uint8_t>(in[i]) << 16) | (static_cast<uint8_t>(in[i + 1]) << 8) | static_cast<uint8_t>(in[i + 2]);
    out += t[v >> 18];
    out += t[(v >> 12) & 63];
    out += t[(v >> 6) & 63];
    out += t[v & 63];
  }
  if (i < in.size()) {
    uint32_t v = static_cast<uint8_t>(in[i]) << 16;
    if (i + 1 < in.size()) v |= static_cast<uint8_t>(in[i + 1]) << 8;
    out += t[v >> 18];
    out += t[(v >> 12) & 63];
    out += i + 1 < in.size() ? t[(v >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

}  // namespace

Status Fleet::Impl::Start() {
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    if (opt_.clients.size() + 64 > rl.rlim_cur) {
      return Status::BadInput("shard has " + std::to_string(opt_.clients.size()) + " clients but only " +
                                  std::to_string(rl.rlim_cur) + " file descriptors",
                              "use more shards (--clients-per-process)");
    }
  }
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGINT);
  sigaddset(&mask, SIGTERM);
  sigaddset(&mask, SIGUSR1);
  pthread_sigmask(SIG_BLOCK, &mask, nullptr);
  sigfd_ = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
  loop_.Add(sigfd_, EPOLLIN, [this](uint32_t) { OnSignal(); });

  clients_.resize(opt_.clients.size());
  for (size_t i = 0; i < opt_.clients.size(); ++i) {
    Client& c = clients_[i];
    c.spec = &opt_.clients[i];
    if (!ParseAddr(c.spec->source_ip, &c.src)) return Status::BadInput("bad source_ip " + c.spec->source_ip);
    if (!ParseAddr(c.spec->connect, &c.dst)) return Status::BadInput("bad connect address " + c.spec->connect);
    c.src.sin_port = 0;
    c.request = "POST /ts2021 HTTP/1.1\r\nHost: " + c.spec->host + "\r\nUpgrade: " + wire::kUpgradeProtocol +
                "\r\nConnection: upgrade\r\nX-Tailscale-Handshake: " + Base64(c.spec->machine_key) +
                "\r\nContent-Length: 0\r\n\r\n";
  }
  int64_t ramp = opt_.ramp_ms >= 0 ? opt_.ramp_ms : std::min<int64_t>(2000, static_cast<int64_t>(clients_.size()) / 2);
  std::uniform_int_distribution<int64_t> d(0, std::max<int64_t>(0, ramp));
  for (size_t i = 0; i < clients_.size(); ++i) {
    loop_.After(d(rng_), [this, i] { Attempt(i); });
  }
  loop_.After(opt_.summary_ms, [this] { WriteSummary(); });
  loop_.After(1000, [this] { Sweep(); });
  loop_.After(1000, [this] { WriteClients(); });
  WriteSummary();
  return Status::Ok();
}

void Fleet::Impl::Run() {
  loop_.Run();
  stopping_ = true;
  WriteSummary();
  dirty_ = true;
  WriteClients();
}

void Fleet::Impl::OnSignal() {
  signalfd_siginfo si{};
  while (read(sigfd_, &si, sizeof si) == static_cast<ssize_t>(sizeof si)) {
    if (si.ssi_signo == SIGUSR1) {
      ResetStats();
    } else {
      loop_.Stop();
    }
  }
}


void Fleet::Impl::Attempt(size_t i) {
  Client& c = clients_[i];
  if (c.fd >= 0 || stopping_) return;
  c.attempt_started = MonoMs();
  c.in.clear();
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    Fail(i, std::string("socket: ") + std::strerror(errno), false);
    return;
  }
  int one = 1;
  setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (bind(fd, reinterpret_cast<sockaddr*>(&c.src), sizeof c.src) != 0) {
    std::string err = std::strerror(errno);
    close(fd);
    Fail(i, "bind " + c.spec->source_ip + ": " + err, false);
    return;
  }
  c.fd = fd;
  c.st = St::kConnecting;
  int r = connect(fd, reinterpret_cast<sockaddr*>(&c.dst), sizeof c.dst);
  if (r != 0 && errno != EINPROGRESS) {
    Fail(i, std::string("connect: ") + std::strerror(errno), false);
    return;
  }
  loop_.Add(fd, EPOLLOUT | EPOLLIN | EPOLLRDHUP, [this, i](uint32_t ev) { OnEvent(i, ev); });
}

void Fleet::Impl::OnEvent(size_t i, uint32_t ev) {
  Client& c = clients_[i];
  if (c.fd < 0) return;
  if (c.st == St::kConnecting) {
    if (!(ev & (EPOLLOUT | EPOLLERR | EPOLLHUP))) return;
    int err = 0;
    socklen_t len = sizeof err;
    getsockopt(c.fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) {
      Fail(i, std::string("connect: ") + std::strerror(err), false);
      return;
    }
    // The request is tiny: one send fits the empty socket buffer.
    if (send(c.fd, c.request.data(), c.request.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(c.request.size())) {
      Fail(i, "send request failed", false);
      return;
    }
    c.st = St::kUpgrading;
    loop_.Modify(c.fd, EPOLLIN | EPOLLRDHUP);
    return;
  }
  if (ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) OnData(i);
}

void Fleet::Impl::OnData(size_t i) {
  Client& c = clients_[i];
  char buf[8192];
  bool eof = false;
  int read_errno = 0;
  for (;;) {
    ssize_t n = read(c.fd, buf, sizeof buf);
    if (n > 0) {
      c.in.append(buf, static_cast<size_t>(n));
      c.last_rx = MonoMs();
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    eof = true;
    read_errno = n < 0 ? errno : 0;
    break;
  }
  // Process what arrived, including data that came just before a close (e.g. "ERR 404" then FIN).
  if (c.st == St::kUpgrading) {
    size_t end = c.in.find("\r\n\r\n");
    if (end == std::string::npos) {
      if (c.in.size() > 16384) {
        Fail(i, "oversized HTTP response", false);
      } else if (eof) {
        std::string first = c.in.substr(0, c.in.find("\r\n"));
        Fail(i, first.empty() ? "closed by peer before the upgrade" : "upgrade refused: " + first, false);
      }
      return;
    }
    std::string status_line = c.in.substr(0, c.in.find("\r\n"));
    if (status_line.rfind("HTTP/1.1 101", 0) != 0 && status_line.rfind("HTTP/1.0 101", 0) != 0) {
      Fail(i, "upgrade refused: " + status_line, false);
      return;
    }
    c.in.erase(0, end + 4);
    c.st = St::kMapping;
    if (!eof) {
      std::string map = std::string(wire::kMap) + " " + c.spec->node_key + " " + c.spec->machine_key + " " +
                        c.spec->endpoints + "\n";
      if (send(c.fd, map.data(), map.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(map.size())) {
        Fail(i, "send map request failed", false);
        return;
      }
    }
  }
  while (c.fd >= 0) {
    size_t nl = c.in.find('\n');
    if (nl == std::string::npos) {
      if (c.in.size() > wire::kMaxLine) Fail(i, "oversized line", false);
      break;
    }
    std::string line = c.in.substr(0, nl);
    c.in.erase(0, nl + 1);
    HandleLine(i, line);
  }
  if (eof && c.fd >= 0) {
    Fail(i, read_errno == 0 ? "closed by peer" : std::string("read: ") + std::strerror(read_errno), false);
  }
}

void Fleet::Impl::HandleLine(size_t i, const std::string& line) {
  Client& c = clients_[i];
  auto word = [&line](int k) {
    size_t pos = 0;
    for (int j = 0; j < k; ++j) {
      pos = line.find(' ', pos);
      if (pos == std::string::npos) return std::string();
      ++pos;
    }
    size_t end = line.find(' ', pos);
    return line.substr(pos, end == std::string::npos ? std::string::npos : end - pos);
  };
  std::string verb = word(0);
  if (verb == wire::kKeepAlive && c.st == St::kConnected) {
    std::string cl = word(1);
    if (cl != c.cluster) {
      c.cluster = cl;
      dirty_ = true;
    }
    return;
  }
  if (verb == wire::kOk && c.st == St::kMapping) {
    c.st = St::kConnected;
    c.cluster = word(1);
    c.backoff_n = 0;  // a successful map response resets tailscale's backoff
    c.last_error.clear();
    if (c.interrupted_at >= 0) {
      int64_t ms = MonoMs() - c.interrupted_at;
      auto& v = interruptions_[c.spec->tenant];
      if (v.size() >= 100000) v.erase(v.begin(), v.begin() + 50000);  // bound memory in long flapping runs
      v.push_back(ms);
      ++c.reconnects;
      if (!c.events.empty() && c.events.back().reconnected_ms == 0) c.events.back().reconnected_ms = WallMs();
      c.interrupted_at = -1;
    }
    c.ever_connected = true;
    dirty_ = true;
    return;
  }
  if (verb == wire::kErr) {
    bool rejection = word(1) == "404";
    Fail(i, line, rejection);
    return;
  }
  // Anything else is a protocol violation by the server.
  Fail(i, "unexpected line: " + line.substr(0, 80), false);
}

void Fleet::Impl::Drop(Client& c) {
  if (c.fd >= 0) {
    loop_.Remove(c.fd);
    close(c.fd);
    c.fd = -1;
  }
  c.in.clear();
}

void Fleet::Impl::Fail(size_t i, const std::string& why, bool rejection) {
  Client& c = clients_[i];
  bool was_connected = c.st == St::kConnected;
  Drop(c);
  c.st = St::kIdle;
  c.cluster.clear();
  c.last_error = why;
  dirty_ = true;
  if (was_connected) {
    ++c.disconnects;
    c.interrupted_at = MonoMs();
    c.events.push_back({WallMs(), 0});
    if (c.events.size() > 16) c.events.pop_front();
  } else if (rejection) {
    ++c.rejections;
    c.rejected_at.push_back(WallMs());
    if (c.rejected_at.size() > 16) c.rejected_at.pop_front();
  } else {
    ++c.errors;
  }
  if (!stopping_) ScheduleRetry(i);
}

void Fleet::Impl::ScheduleRetry(size_t i) {
  Client& c = clients_[i];
  // tailscale util/backoff: n++, d = min(n²·10 ms, max) × U(0.5, 1.5).
  ++c.backoff_n;
  double d = std::min<double>(static_cast<double>(c.backoff_n) * c.backoff_n * 10.0, static_cast<double>(opt_.max_backoff_ms));
  std::uniform_real_distribution<double> jitter(0.5, 1.5);
  int64_t delay = static_cast<int64_t>(d * jitter(rng_));
  loop_.After(delay, [this, i] { Attempt(i); });
}

void Fleet::Impl::Sweep() {
  int64_t now = MonoMs();
  for (size_t i = 0; i < clients_.size(); ++i) {
    Client& c = clients_[i];
    if (c.fd < 0) continue;
    if (c.st == St::kConnected) {
      if (now - c.last_rx > opt_.poll_timeout_ms) Fail(i, "no keep-alive within poll timeout", false);
    } else if (now - c.attempt_started > opt_.connect_timeout_ms) {
      Fail(i, std::string("timeout while ") + StateName(c.st), false);
    }
  }
  loop_.After(1000, [this] { Sweep(); });
}

Fleet::Fleet(FleetOptions options) : impl_(std::make_unique<Impl>(std::move(options))) {}
Fleet::~Fleet() = default;
Status Fleet::Start() { return impl_->Start(); }
void Fleet::Run() { impl_->Run(); }

}  // namespace headshift::sandbox
