#include "tests/integration/dataplane/netns_lab.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <stdexcept>

#include <fmt/format.h>

#include "common/subprocess.h"

namespace headshift::testing {
namespace {

std::string Join(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& a : v) s += (s.empty() ? "" : " ") + a;
  return s;
}

[[noreturn]] void Throw(const std::string& what) { throw std::runtime_error(what); }
[[noreturn]] void ThrowErrno(const std::string& what) { Throw(what + ": " + std::strerror(errno)); }

struct SockAddr {
  sockaddr_storage ss{};
  socklen_t len = 0;
};

SockAddr MakeAddr(const std::string& addr, uint16_t port) {
  SockAddr a;
  if (addr.find(':') == std::string::npos) {
    auto* s = reinterpret_cast<sockaddr_in*>(&a.ss);
    s->sin_family = AF_INET;
    s->sin_port = htons(port);
    if (inet_pton(AF_INET, addr.c_str(), &s->sin_addr) != 1) Throw("bad address " + addr);
    a.len = sizeof *s;
  } else {
    auto* s = reinterpret_cast<sockaddr_in6*>(&a.ss);
    s->sin6_family = AF_INET6;
    s->sin6_port = htons(port);
    if (inet_pton(AF_INET6, addr.c_str(), &s->sin6_addr) != 1) Throw("bad address " + addr);
    a.len = sizeof *s;
  }
  return a;
}

std::string EndpointOf(int fd, bool peer) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if ((peer ? getpeername(fd, reinterpret_cast<sockaddr*>(&ss), &len)
            : getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len)) != 0) {
    return "?";
  }
  char buf[INET6_ADDRSTRLEN] = "";
  if (ss.ss_family == AF_INET) {
    auto* s = reinterpret_cast<sockaddr_in*>(&ss);
    inet_ntop(AF_INET, &s->sin_addr, buf, sizeof buf);
    return std::string(buf) + ":" + std::to_string(ntohs(s->sin_port));
  }
  auto* s = reinterpret_cast<sockaddr_in6*>(&ss);
  inet_ntop(AF_INET6, &s->sin6_addr, buf, sizeof buf);
  return fmt::format("[{}]:{}", buf, ntohs(s->sin6_port));
}

void SetNonBlocking(int fd) { fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK); }

// Opens a socket inside `ns` (the socket stays in that namespace).
int SocketIn(const TestNetns& ns, int family) {
  int fd = -1;
  Status st = ns.netns().Run([&] {
    fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    return fd < 0 ? Status::Failed(std::strerror(errno)) : Status::Ok();
  });
  if (!st.ok()) Throw("socket in " + ns.name() + ": " + st.ToString());
  return fd;
}

bool WaitFd(int fd, short events, int timeout_ms) {
  pollfd p{fd, events, 0};
  return poll(&p, 1, timeout_ms) > 0;
}

// Reads exactly n bytes (non-blocking fd) within the timeout; "" or the problem.
std::string ReadExactly(int fd, size_t n, std::string* out, int timeout_ms = 5000) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  char buf[65536];
  size_t got = 0;
  while (got < n) {
    ssize_t r = recv(fd, buf, std::min(sizeof buf, n - got), 0);
    if (r > 0) {
      if (out) out->append(buf, static_cast<size_t>(r));
      got += static_cast<size_t>(r);
      continue;
    }
    if (r == 0) return "EOF after " + std::to_string(got) + " of " + std::to_string(n) + " bytes";
    if (errno != EAGAIN) return std::string("recv: ") + std::strerror(errno);
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()).count();
    if (left <= 0 || !WaitFd(fd, POLLIN, static_cast<int>(left))) {
      return "timeout after " + std::to_string(got) + " of " + std::to_string(n) + " bytes";
    }
  }
  return "";
}

std::string WriteAll(int fd, const std::string& data) {
  size_t off = 0;
  while (off < data.size()) {
    ssize_t w = send(fd, data.data() + off, data.size() - off, MSG_NOSIGNAL);
    if (w > 0) {
      off += static_cast<size_t>(w);
      continue;
    }
    if (errno != EAGAIN) return std::string("send: ") + std::strerror(errno);
    if (!WaitFd(fd, POLLOUT, 5000)) return "send timeout";
  }
  return "";
}

size_t Flood(int fd) {
  static const std::string chunk(16384, 'b');
  size_t total = 0;
  while (true) {
    ssize_t w = send(fd, chunk.data(), chunk.size(), MSG_NOSIGNAL);
    if (w > 0) {
      total += static_cast<size_t>(w);
      continue;
    }
    if (errno == EAGAIN) {
      // Let in-flight data settle, then try once more: the queues are full when a retry fails.
      if (WaitFd(fd, POLLOUT, 50)) continue;
      return total;
    }
    ThrowErrno("flood send");
  }
}

}  // namespace

void MustRun(const std::vector<std::string>& argv) {
  auto r = RunArgv(argv, 30000);
  if (!r.ok()) Throw(Join(argv) + ": " + r.status().ToString());
  if (r->exit_code != 0) Throw(Join(argv) + " exited " + std::to_string(r->exit_code) + ": " + r->output);
}

void RemoveStaleTestNetns() {
  DIR* d = opendir("/run/netns");
  if (!d) return;
  std::vector<std::string> stale;
  while (dirent* e = readdir(d)) {
    std::string n = e->d_name;
    if (n.rfind("hsdp", 0) != 0) continue;
    size_t i = 4;
    while (i < n.size() && isdigit(static_cast<unsigned char>(n[i]))) ++i;
    if (i == 4) continue;
    pid_t pid = static_cast<pid_t>(std::stol(n.substr(4, i - 4)));
    if (kill(pid, 0) != 0 && errno == ESRCH) stale.push_back(n);
  }
  closedir(d);
  for (const auto& n : stale) RunArgv({"ip", "netns", "del", n}, 10000).ok();
}

TestNetns::TestNetns(const std::string& tag) : name_("hsdp" + std::to_string(getpid()) + tag) {
  RunArgv({"ip", "netns", "del", name_}, 10000).ok();  // a leftover of this very pid (reused)
  MustRun({"ip", "netns", "add", name_});
  auto h = Netns::Open(name_);
  if (!h.ok()) Throw(h.status().ToString());
  handle_ = std::move(h).value();
  Ip({"link", "set", "lo", "up"});
}

TestNetns::~TestNetns() { RunArgv({"ip", "netns", "del", name_}, 10000).ok(); }

void TestNetns::Ip(const std::vector<std::string>& args) const {
  std::vector<std::string> argv{"ip", "-n", name_};
  argv.insert(argv.end(), args.begin(), args.end());
  MustRun(argv);
}

void TestNetns::Exec(const std::vector<std::string>& args) const {
  std::vector<std::string> argv{"ip", "netns", "exec", name_};
  argv.insert(argv.end(), args.begin(), args.end());
  MustRun(argv);
}

void TestNetns::AddLoopbackAddress(const std::string& cidr) const {
  if (cidr.find(':') != std::string::npos) {
    Ip({"addr", "add", cidr, "dev", "lo", "nodad"});
  } else {
    Ip({"addr", "add", cidr, "dev", "lo"});
  }
}

int Listen(const TestNetns& ns, const std::string& addr, uint16_t port, bool dual_stack) {
  SockAddr a = MakeAddr(addr, port);
  int fd = SocketIn(ns, a.ss.ss_family);
  int one = 1, zero = 0;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (a.ss.ss_family == AF_INET6) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, dual_stack ? &zero : &one, sizeof one);
  if (bind(fd, reinterpret_cast<sockaddr*>(&a.ss), a.len) != 0) ThrowErrno("bind " + addr + ":" + std::to_string(port));
  if (listen(fd, 1024) != 0) ThrowErrno("listen");
  SetNonBlocking(fd);
  return fd;
}

Conn Connect(const TestNetns& client_ns, const std::string& src, const std::string& dst, uint16_t port, int listener,
             const std::string& label) {
  Conn c;
  c.label = label;
  SockAddr s = MakeAddr(src, 0), d = MakeAddr(dst, port);
  c.client = SocketIn(client_ns, d.ss.ss_family);
  if (bind(c.client, reinterpret_cast<sockaddr*>(&s.ss), s.len) != 0) ThrowErrno("bind client " + src);
  if (connect(c.client, reinterpret_cast<sockaddr*>(&d.ss), d.len) != 0) ThrowErrno(label + ": connect " + dst);
  SetNonBlocking(c.client);
  if (!WaitFd(listener, POLLIN, 5000)) Throw(label + ": nothing to accept");
  c.server = accept4(listener, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
  if (c.server < 0) ThrowErrno(label + ": accept");
  c.peer = EndpointOf(c.server, /*peer=*/true);
  c.local = EndpointOf(c.server, /*peer=*/false);
  return c;
}

void Close(Conn& c) {
  if (c.client >= 0) close(c.client);
  if (c.server >= 0) close(c.server);
  c.client = c.server = -1;
}


void MakeBusy(Conn& c) {
  c.pending_c2s += Flood(c.client);
  c.pending_s2c += Flood(c.server);
  if (c.pending_c2s == 0 || c.pending_s2c == 0) Throw(c.label + ": could not queue data");
}

std::string Exchange(Conn& c) {
  if (c.pending_c2s) {
    if (auto e = ReadExactly(c.server, c.pending_c2s, nullptr); !e.empty()) return c.label + ": draining c2s: " + e;
    c.pending_c2s = 0;
  }
  if (c.pending_s2c) {
    if (auto e = ReadExactly(c.client, c.pending_s2c, nullptr); !e.empty()) return c.label + ": draining s2c: " + e;
    c.pending_s2c = 0;
  }
  const std::string ping = "ping " + c.label, pong = "pong " + c.label;
  std::string got;
  if (auto e = WriteAll(c.client, ping); !e.empty()) return c.label + ": " + e;
  if (auto e = ReadExactly(c.server, ping.size(), &got); !e.empty()) return c.label + ": server read: " + e;
  if (got != ping) return c.label + ": server read garbage";
  got.clear();
  if (auto e = WriteAll(c.server, pong); !e.empty()) return c.label + ": " + e;
  if (auto e = ReadExactly(c.client, pong.size(), &got); !e.empty()) return c.label + ": client read: " + e;
  if (got != pong) return c.label + ": client read garbage";
  return "";
}

int AwaitError(int fd, int timeout_ms) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  char buf[65536];
  while (true) {
    ssize_t r = recv(fd, buf, sizeof buf, 0);
    if (r > 0) continue;  // queued data is delivered before the error
    if (r == 0) return 0;
    if (errno != EAGAIN) return errno;
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()).count();
    if (left <= 0 || !WaitFd(fd, POLLIN, static_cast<int>(left))) return -1;
  }
}

std::string ListenerAccepts(const TestNetns& client_ns, const std::string& src, const std::string& dst, uint16_t port,
                            int listener) {
  try {
    Conn c = Connect(client_ns, src, dst, port, listener, "new-" + dst + ":" + std::to_string(port));
    std::string e = Exchange(c);
    Close(c);
    return e;
  } catch (const std::exception& e) {
    return e.what();
  }
}

}  // namespace headshift::testing
