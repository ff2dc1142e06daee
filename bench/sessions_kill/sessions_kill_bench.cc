// sessions_kill_bench: times `headshift sessions kill` against `ss -K` with the equivalent filter, on
// the same table of established TCP connections in one network namespace, in the same run.
//
// Layout (namespaces hsdp<pid>b, the proxy's, and hsdp<pid>c, the clients', joined by a veth pair):
//   server shards  S processes in the proxy's namespace, each a SO_REUSEPORT listener on
//                  10.70.0.1:443 holding the accepted sockets; one process may hold at most 20,000
//                  fds, hence shards.
//   client shards  processes in the clients' namespace holding the client ends: "others" from
//                  10.70.1.x, tenant A from 10.99.0.x, tenant B from 10.98.0.x (--tenant each).
// Every kill sees exactly --total established connections on port 443 (others + A + B). headshift
// resets tenant A (--client 10.99.0.0/24), `ss -K` resets tenant B (dst 10.98.0.0/24); after each
// kill the killed tenant reconnects, so the next kill sees the same table. Rounds alternate which
// tool goes first. Both tools are run the same way (fork/exec, stdout to a pipe, wall clock around
// it). Every shard reports, per group, how its sockets ended: a kill is correct when exactly the
// tenant's connections saw a reset (client ECONNRESET, server ECONNABORTED) and nobody else did.
//
// The event loops use epoll directly: a library would add nothing for holding idle sockets.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <map>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace {

constexpr uint16_t kPort = 443;
constexpr const char* kServer = "10.70.0.1";
enum Group { kOthers = 0, kTenantA = 1, kTenantB = 2, kGroups = 3 };
constexpr const char* kGroupName[kGroups] = {"others", "tenant A", "tenant B"};
constexpr int kPerSource = 10000;  // connections per source address (ephemeral range is ~28k)

[[noreturn]] void Die(const std::string& what) { throw std::runtime_error(what); }
[[noreturn]] void DieErrno(const std::string& what) { Die(what + ": " + std::strerror(errno)); }

double MsSince(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

Group GroupOfAddress(uint32_t host_order) {
  if ((host_order >> 8) == ((10u << 16) | (99u << 8) | 0u)) return kTenantA;
  if ((host_order >> 8) == ((10u << 16) | (98u << 8) | 0u)) return kTenantB;
  return kOthers;
}

std::string SourceAddress(Group g, int index) {
  switch (g) {
    case kTenantA: return "10.99.0." + std::to_string(index + 1);
    case kTenantB: return "10.98.0." + std::to_string(index + 1);
    default: return "10.70.1." + std::to_string(index + 1);
  }
}

// ---- a child process: event loop + line commands on a pipe ----

struct Counts {
  std::array<long, kGroups> established{}, reset{}, aborted{}, other{};
  long connecting = 0, connect_failed = 0, accept_failed = 0;
  std::string Line() const {
    std::ostringstream o;
    for (int g = 0; g < kGroups; ++g) o << established[g] << ' ' << reset[g] << ' ' << aborted[g] << ' ' << other[g] << ' ';
    o << connecting << ' ' << connect_failed << ' ' << accept_failed << '\n';
    return o.str();
  }
  static Counts Parse(const std::string& line) {
    Counts c;
    std::istringstream i(line);
    for (int g = 0; g < kGroups; ++g) i >> c.established[g] >> c.reset[g] >> c.aborted[g] >> c.other[g];
    i >> c.connecting >> c.connect_failed >> c.accept_failed;
    if (!i) Die("bad status line: " + line);
    return c;
  }
  void Add(const Counts& o) {
    for (int g = 0; g < kGroups; ++g) {
      established[g] += o.established[g];
      reset[g] += o.reset[g];
      aborted[g] += o.aborted[g];
      other[g] += o.other[g];
    }
    connecting += o.connecting;
    connect_failed += o.connect_failed;
    accept_failed += o.accept_failed;
  }
};

struct ShardSpec {
  bool server = false;
  std::vector<std::pair<Group, std::string>> sources;  // client: one entry per connection
};

void EnterNetns(const std::string& name) {
  int fd = open(("/run/netns/" + name).c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0 || setns(fd, CLONE_NEWNET) != 0) DieErrno("setns " + name);
  close(fd);
}

class Shard {
 public:
  Shard(const ShardSpec& spec, int cmd_fd, int rsp_fd) : spec_(spec), cmd_(cmd_fd), rsp_(rsp_fd) {
    ep_ = epoll_create1(EPOLL_CLOEXEC);
    fcntl(cmd_, F_SETFL, O_NONBLOCK);
    Watch(cmd_, EPOLLIN);
    kind_.resize(65536, kNone);
    group_.resize(65536, kOthers);
  }

  void Run() {
    if (spec_.server) {
      listener_ = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
      int one = 1;
      setsockopt(listener_, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
      setsockopt(listener_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
      sockaddr_in a{};
      a.sin_family = AF_INET;
      a.sin_port = htons(kPort);
      inet_pton(AF_INET, kServer, &a.sin_addr);
      if (bind(listener_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || listen(listener_, 4096) != 0) {
        DieErrno("listen");
      }
      Watch(listener_, EPOLLIN);
    } else {
      pending_ = spec_.sources;
    }
    Reply("ready\n");
    epoll_event evs[512];
    while (!quit_) {
      if (passive_) {
        // During a kill the holders stay off the CPUs: they only wait for the next command, and
        // collect what happened to their sockets when asked (Drain).
        pollfd p{cmd_, POLLIN, 0};
        poll(&p, 1, -1);
        Command();
        continue;
      }
      StartConnects();
      int n = epoll_wait(ep_, evs, 512, 200);
      for (int i = 0; i < n; ++i) Handle(evs[i]);
    }
  }

 private:
  enum Kind : uint8_t { kNone, kConnecting, kConn };

  void Watch(int fd, uint32_t events) {
    epoll_event e{};
    e.events = events;
    e.data.fd = fd;
    epoll_ctl(ep_, EPOLL_CTL_ADD, fd, &e);
  }
  void Reply(const std::string& s) {
    if (write(rsp_, s.data(), s.size()) != static_cast<ssize_t>(s.size())) _exit(3);
  }

  void StartConnects() {
    while (!pending_.empty() && counts_.connecting < 256) {
      auto [g, src] = pending_.back();
      pending_.pop_back();
      int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
      if (fd < 0) DieErrno("socket");
      int one = 1;
      setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
      sockaddr_in s{}, d{};
      s.sin_family = d.sin_family = AF_INET;
      inet_pton(AF_INET, src.c_str(), &s.sin_addr);
      inet_pton(AF_INET, kServer, &d.sin_addr);
      d.sin_port = htons(kPort);
      if (bind(fd, reinterpret_cast<sockaddr*>(&s), sizeof s) != 0) DieErrno("bind " + src);
      if (connect(fd, reinterpret_cast<sockaddr*>(&d), sizeof d) != 0 && errno != EINPROGRESS) {
        ++counts_.connect_failed;
        close(fd);
        continue;
      }
      Track(fd, kConnecting, g, src);
      Watch(fd, EPOLLOUT);
      ++counts_.connecting;
    }
  }

  void Track(int fd, Kind k, Group g, const std::string& src = {}) {
    if (static_cast<size_t>(fd) >= kind_.size()) {
      kind_.resize(fd * 2, kNone);
      group_.resize(fd * 2, kOthers);
      source_.resize(fd * 2);
    }
    if (source_.size() < kind_.size()) source_.resize(kind_.size());
    kind_[fd] = k;
    group_[fd] = g;
    if (!src.empty()) source_[fd] = src;
  }

  void Handle(const epoll_event& e) {
    int fd = e.data.fd;
    if (fd == cmd_) return Command();
    if (fd == listener_) return Accept();
    if (kind_[fd] == kConnecting) {
      int err = 0;
      socklen_t len = sizeof err;
      getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
      --counts_.connecting;
      if (err != 0) {
        ++counts_.connect_failed;
        pending_.push_back({group_[fd], source_[fd]});  // retry
        Forget(fd);
        return;
      }
      kind_[fd] = kConn;
      ++counts_.established[group_[fd]];
      epoll_event m{};
      m.events = EPOLLIN | EPOLLRDHUP;
      m.data.fd = fd;
      epoll_ctl(ep_, EPOLL_CTL_MOD, fd, &m);
      return;
    }
    if (kind_[fd] != kConn) return;
    // Idle connections: an event means it ended — unless it is a stale one for an fd number that
    // was closed and reused within the same batch; the socket itself says which.
    if (!(e.events & (EPOLLERR | EPOLLHUP | EPOLLRDHUP))) {
      char c;
      if (recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT) < 0 && errno == EAGAIN) return;
    }
    int err = 0;
    socklen_t len = sizeof err;
    getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
    Group g = group_[fd];
    --counts_.established[g];
    if (err == ECONNRESET) {
      ++counts_.reset[g];
    } else if (err == ECONNABORTED) {
      ++counts_.aborted[g];
    } else {
      ++counts_.other[g];
    }
    if (!spec_.server) dead_.push_back({g, source_[fd]});
    Forget(fd);
  }

  void Forget(int fd) {
    epoll_ctl(ep_, EPOLL_CTL_DEL, fd, nullptr);
    kind_[fd] = kNone;
    close(fd);
  }

  // Handles every pending event (used in passive mode before reporting).
  void Drain() {
    epoll_event evs[512];
    int n;
    while ((n = epoll_wait(ep_, evs, 512, 0)) > 0) {
      for (int i = 0; i < n; ++i) {
        if (evs[i].data.fd != cmd_) Handle(evs[i]);
      }
    }
  }

  void Accept() {
    while (true) {
      sockaddr_in peer{};
      socklen_t len = sizeof peer;
      int fd = accept4(listener_, reinterpret_cast<sockaddr*>(&peer), &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) {
        if (errno != EAGAIN && errno != EINTR) ++counts_.accept_failed;
        return;
      }
      Group g = GroupOfAddress(ntohl(peer.sin_addr.s_addr));
      Track(fd, kConn, g);
      ++counts_.established[g];
      Watch(fd, EPOLLIN | EPOLLRDHUP);
    }
  }

  void Command() {
    char buf[256];
    ssize_t n = read(cmd_, buf, sizeof buf);
    if (n <= 0) {
      quit_ = true;
      return;
    }
    inbuf_.append(buf, static_cast<size_t>(n));
    size_t nl;
    while ((nl = inbuf_.find('\n')) != std::string::npos) {
      std::string line = inbuf_.substr(0, nl);
      inbuf_.erase(0, nl + 1);
      if (line == "status") {
        if (passive_) Drain();  // active: the event loop is handling them (and may be mid-batch)
        Reply(counts_.Line());
      } else if (line == "passive" || line == "active") {
        passive_ = line == "passive";
        Reply("ok\n");
      } else if (line.rfind("refill ", 0) == 0) {
        Group g = static_cast<Group>(std::stoi(line.substr(7)));
        std::vector<std::pair<Group, std::string>> keep;
        for (auto& d : dead_) (d.first == g ? pending_ : keep).push_back(d);
        dead_.swap(keep);
        Reply("ok\n");
      } else if (line == "quit") {
        quit_ = true;
        Reply("bye\n");
      }
    }
  }

  const ShardSpec& spec_;
  int cmd_, rsp_, ep_ = -1, listener_ = -1;
  bool quit_ = false;
  bool passive_ = false;
  Counts counts_;
  std::string inbuf_;
  std::vector<Kind> kind_;
  std::vector<Group> group_;
  std::vector<std::string> source_;
  std::vector<std::pair<Group, std::string>> pending_, dead_;
};

// ---- the parent ----

struct Child {
  pid_t pid = -1;
  int cmd = -1, rsp = -1;
  bool server = false;
};

std::string ReadLine(int fd, int timeout_ms = 30000) {
  std::string line;
  char c;
  while (true) {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, timeout_ms) <= 0) Die("shard did not answer");
    ssize_t n = read(fd, &c, 1);
    if (n <= 0) Die("shard exited");
    if (c == '\n') return line;
    line.push_back(c);
  }
}

struct ToolRun {
  double wall_ms = 0;
  int exit_code = -1;
  std::string out, err;
};

// fork/exec with stdout and stderr captured; wall clock from fork to exit.
ToolRun RunTool(const std::vector<std::string>& argv) {
  ToolRun r;
  int out[2], err[2];
  if (pipe2(out, O_CLOEXEC) != 0 || pipe2(err, O_CLOEXEC) != 0) DieErrno("pipe");
  auto t0 = std::chrono::steady_clock::now();
  pid_t pid = fork();
  if (pid == 0) {
    dup2(out[1], 1);
    dup2(err[1], 2);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    execvp(args[0], args.data());
    _exit(127);
  }
  close(out[1]);
  close(err[1]);
  pollfd fds[2] = {{out[0], POLLIN, 0}, {err[0], POLLIN, 0}};
  int open_fds = 2;
  char buf[65536];
  while (open_fds > 0) {
    if (poll(fds, 2, -1) < 0 && errno != EINTR) break;
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      ssize_t n = read(fds[i].fd, buf, sizeof buf);
      if (n <= 0) {
        close(fds[i].fd);
        fds[i].fd = -1;
        --open_fds;
      } else {
        (i == 0 ? r.out : r.err).append(buf, static_cast<size_t>(n));
      }
    }
  }
  int st = 0;
  waitpid(pid, &st, 0);
  r.wall_ms = MsSince(t0);
  r.exit_code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  return r;
}

void MustRun(const std::vector<std::string>& argv) {
  ToolRun r = RunTool(argv);
  if (r.exit_code != 0) {
    std::string cmd;
    for (const auto& a : argv) cmd += a + " ";
    Die(cmd + "failed: " + r.err);
  }
}

struct Options {
  int total = 60000;
  int tenant = 10000;
  int rounds = 2;
  int server_shards = 6;
  int client_shard_max = 15000;
  std::string headshift = HEADSHIFT_BINARY;
  bool quiet = false;
  bool hold = false;  // wait for a line on stdin before the kills (profiling by hand)
  // Holders idle during a kill (they count afterwards) instead of handling each reset as it comes,
  // as a proxy's event loop would (the default).
  bool passive_holders = false;
  // The clients' namespace shares the kernel's global TCP established hash with the proxy's (the
  // kernel default) instead of getting its own (net.ipv4.tcp_child_ehash_entries, Linux 6.1+).
  bool shared_hash = false;
};

class Bench {
 public:
  explicit Bench(const Options& o)
      : opt_(o), ns_("hsdp" + std::to_string(getpid()) + "b"), client_ns_("hsdp" + std::to_string(getpid()) + "c") {}
  ~Bench() { Cleanup(); }

  int Run();

 private:
  void Log(const std::string& s) const {
    if (!opt_.quiet) std::fprintf(stderr, "%s\n", s.c_str());
  }
  void Spawn(const ShardSpec& spec);
  Counts Status(bool servers);
  void Broadcast(const std::string& cmd);  // to every shard; each answers "ok"
  void WaitEstablished(const std::array<long, kGroups>& want);
  void Cleanup();

  struct Kill {
    std::string tool;
    int tool_id = 0;
    Group group;
    double wall_ms;
    long reported;      // what the tool says it reset
    long client_resets;  // clients of the tenant that saw ECONNRESET
    long left;           // tenant connections still established afterwards
    long collateral;     // anyone else whose connection ended
    double hs_dump_ms = 0, hs_destroy_ms = 0;
  };
  enum Tool { kHsJson, kHsText, kSs, kTools };
  static constexpr const char* kToolName[kTools] = {"headshift --json sessions kill", "headshift sessions kill",
                                                     "ss -K"};
  Kill DoKill(Tool tool, std::array<long, kGroups> want);

  Options opt_;
  std::string ns_;         // the proxy's namespace: server shards, and what the tools work on
  std::string client_ns_;  // the clients' namespace, joined to the proxy's by a veth pair
  bool ns_created_ = false;
  std::vector<ShardSpec> specs_;
  std::vector<Child> children_;
};

void Bench::Spawn(const ShardSpec& spec) {
  int cmd[2], rsp[2];
  if (pipe2(cmd, O_CLOEXEC) != 0 || pipe2(rsp, O_CLOEXEC) != 0) DieErrno("pipe");
  pid_t pid = fork();
  if (pid < 0) DieErrno("fork");
  if (pid == 0) {
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    close(cmd[1]);
    close(rsp[0]);
    try {
      EnterNetns(spec.server ? ns_ : client_ns_);
      Shard(spec, cmd[0], rsp[1]).Run();
    } catch (const std::exception& e) {
      std::fprintf(stderr, "shard: %s\n", e.what());
      _exit(2);
    }
    _exit(0);
  }
  close(cmd[0]);
  close(rsp[1]);
  children_.push_back({pid, cmd[1], rsp[0], spec.server});
  if (ReadLine(rsp[0]) != "ready") Die("shard did not start");
}

Counts Bench::Status(bool servers) {
  Counts total;
  for (auto& c : children_) {
    if (c.server != servers) continue;
    if (write(c.cmd, "status\n", 7) != 7) DieErrno("status");
    total.Add(Counts::Parse(ReadLine(c.rsp)));
  }
  return total;
}

void Bench::WaitEstablished(const std::array<long, kGroups>& want) {
  auto t0 = std::chrono::steady_clock::now();
  while (true) {
    Counts cl = Status(false), sv = Status(true);
    if (cl.established == want && sv.established == want && cl.connecting == 0) return;
    if (sv.accept_failed) Die("a server shard failed to accept (fd limit?)");
    if (MsSince(t0) > 180000) {
      Die("connections not established in time: clients " + cl.Line() + " servers " + sv.Line());
    }
    usleep(100000);
  }
}

void Bench::Broadcast(const std::string& cmd) {
  for (auto& c : children_) {
    std::string line = cmd + "\n";
    if (write(c.cmd, line.data(), line.size()) != static_cast<ssize_t>(line.size()) || ReadLine(c.rsp) != "ok") {
      Die("shard did not take '" + cmd + "'");
    }
  }
}

Bench::Kill Bench::DoKill(Tool tool, std::array<long, kGroups> want) {
  Group g = tool == kSs ? kTenantB : kTenantA;
  Counts cl0 = Status(false), sv0 = Status(true);
  if (opt_.passive_holders) Broadcast("passive");
  Kill k;
  k.tool = kToolName[tool];
  k.tool_id = tool;
  k.group = g;
  ToolRun r;
  if (tool == kHsJson) {
    r = RunTool({opt_.headshift, "--json", "--log-level", "warn", "sessions", "kill", "--netns", ns_, "--port",
                 std::to_string(kPort), "--client", "10.99.0.0/24"});
    auto j = nlohmann::json::parse(r.out, nullptr, false);
    if (r.exit_code != 0 || j.is_discarded()) Die("headshift failed (" + std::to_string(r.exit_code) + "): " + r.out + r.err);
    k.reported = j["reset"].get<long>();
    k.hs_dump_ms = j["timings_ms"]["dump"].get<double>();
    k.hs_destroy_ms = j["timings_ms"]["destroy"].get<double>();
  } else if (tool == kHsText) {
    r = RunTool({opt_.headshift, "--log-level", "warn", "sessions", "kill", "--netns", ns_, "--port",
                 std::to_string(kPort), "--client", "10.99.0.0/24"});
    // Last line: "selected N, reset R, gone G, failed F".
    size_t at = r.out.rfind("selected ");
    long selected = -1;
    if (r.exit_code != 0 || at == std::string::npos ||
        std::sscanf(r.out.c_str() + at, "selected %ld, reset %ld", &selected, &k.reported) != 2) {
      Die("headshift failed (" + std::to_string(r.exit_code) + "): " + r.err);
    }
  } else {
    r = RunTool({"ss", "-K", "-H", "-n", "-t", "-N", ns_, "state", "established", "(", "sport", "=", ":" + std::to_string(kPort),
                 "and", "dst", "10.98.0.0/24", ")"});
    if (r.exit_code != 0) Die("ss -K failed: " + r.err);
    k.reported = std::count(r.out.begin(), r.out.end(), '\n');
  }
  k.wall_ms = r.wall_ms;
  // Let the shards see every RST, then compare.
  Counts cl, sv;
  for (int i = 0; i < 50; ++i) {
    usleep(100000);
    cl = Status(false);
    sv = Status(true);
    if (cl.reset[g] - cl0.reset[g] >= k.reported && sv.aborted[g] - sv0.aborted[g] >= k.reported) break;
  }
  usleep(200000);
  cl = Status(false);
  sv = Status(true);
  k.client_resets = cl.reset[g] - cl0.reset[g];
  k.left = cl.established[g];
  k.collateral = 0;
  for (int o = 0; o < kGroups; ++o) {
    if (o == g) continue;
    k.collateral += (cl.reset[o] - cl0.reset[o]) + (cl.other[o] - cl0.other[o]) + (cl.aborted[o] - cl0.aborted[o]);
    k.collateral += (sv.reset[o] - sv0.reset[o]) + (sv.other[o] - sv0.other[o]) + (sv.aborted[o] - sv0.aborted[o]);
  }
  // The tenant reconnects, so the next kill sees the same table.
  if (opt_.passive_holders) Broadcast("active");
  for (auto& c : children_) {
    if (c.server) continue;
    std::string cmd = "refill " + std::to_string(g) + "\n";
    if (write(c.cmd, cmd.data(), cmd.size()) != static_cast<ssize_t>(cmd.size()) || ReadLine(c.rsp) != "ok") Die("refill");
  }
  WaitEstablished(want);
  return k;
}

void Bench::Cleanup() {
  for (auto& c : children_) {
    if (c.pid > 0) {
      if (write(c.cmd, "quit\n", 5) != 5) kill(c.pid, SIGKILL);
    }
  }
  for (auto& c : children_) {
    if (c.pid > 0) {
      int st;
      pollfd p{c.rsp, POLLIN, 0};
      if (poll(&p, 1, 5000) <= 0) kill(c.pid, SIGKILL);
      waitpid(c.pid, &st, 0);
      close(c.cmd);
      close(c.rsp);
      c.pid = -1;
    }
  }
  children_.clear();
  if (ns_created_) {
    RunTool({"ip", "netns", "del", ns_});
    RunTool({"ip", "netns", "del", client_ns_});
    ns_created_ = false;
  }
}

int Bench::Run() {
  const int others = opt_.total - 2 * opt_.tenant;
  if (others < 0 || opt_.tenant <= 0) Die("--total must be at least twice --tenant");
  std::array<long, kGroups> want = {others, opt_.tenant, opt_.tenant};

  // Two namespaces joined by a veth pair: the proxy's holds only the proxy's ends (as in production,
  // where clients are remote), the clients' the other ends. Neither gets a route off the host.
  ns_created_ = true;
  MustRun({"ip", "netns", "add", ns_});
  // Every sock_diag dump walks its namespace's TCP established hash, which by default is one hash
  // for all namespaces. In production the clients are other hosts; here their 60,000 ends would
  // double what the proxy's dumps walk. So the clients' namespace gets a hash of its own
  // (net.ipv4.tcp_child_ehash_entries applies to namespaces created while it is set; restored
  // right after). --shared-hash keeps the kernel default.
  std::string old_child_hash;
  const char* kChildHash = "/proc/sys/net/ipv4/tcp_child_ehash_entries";
  if (!opt_.shared_hash) {
    FILE* f = std::fopen(kChildHash, "r");
    if (!f) Die("this kernel has no per-namespace TCP hash (Linux 6.1+); run with --shared-hash");
    char buf[32] = "";
    if (std::fgets(buf, sizeof buf, f)) old_child_hash = buf;
    std::fclose(f);
    MustRun({"sysctl", "-q", "-w", "net.ipv4.tcp_child_ehash_entries=131072"});
  }
  MustRun({"ip", "netns", "add", client_ns_});
  if (!opt_.shared_hash) {
    while (!old_child_hash.empty() && (old_child_hash.back() == '\n' || old_child_hash.back() == ' ')) old_child_hash.pop_back();
    MustRun({"sysctl", "-q", "-w", "net.ipv4.tcp_child_ehash_entries=" + (old_child_hash.empty() ? "0" : old_child_hash)});
  }
  const std::string veth_p = "hsdp" + std::to_string(getpid()) + "vb", veth_c = "hsdp" + std::to_string(getpid()) + "vc";
  MustRun({"ip", "-n", client_ns_, "link", "add", veth_c, "type", "veth", "peer", "name", veth_p, "netns", ns_});
  for (const auto& ns : {ns_, client_ns_}) MustRun({"ip", "-n", ns, "link", "set", "lo", "up"});
  MustRun({"ip", "-n", ns_, "link", "set", veth_p, "up"});
  MustRun({"ip", "-n", client_ns_, "link", "set", veth_c, "up"});
  MustRun({"ip", "-n", ns_, "addr", "add", std::string(kServer) + "/32", "dev", veth_p});
  MustRun({"ip", "-n", client_ns_, "route", "add", std::string(kServer) + "/32", "dev", veth_c});
  for (int g = 0; g < kGroups; ++g) {
    for (int i = 0; i * kPerSource < want[g]; ++i) {
      std::string a = SourceAddress(static_cast<Group>(g), i);
      MustRun({"ip", "-n", client_ns_, "addr", "add", a + "/32", "dev", veth_c});
      MustRun({"ip", "-n", ns_, "route", "add", a + "/32", "dev", veth_p});
    }
  }

  // Server shards first, so SO_REUSEPORT spreads the connections over all of them.
  for (int i = 0; i < opt_.server_shards; ++i) {
    ShardSpec s;
    s.server = true;
    specs_.push_back(s);
  }
  // Client shards: one group per shard (refills address a group), at most client_shard_max each.
  for (int g = 0; g < kGroups; ++g) {
    ShardSpec cur;
    for (long n = 0; n < want[g]; ++n) {
      cur.sources.push_back({static_cast<Group>(g), SourceAddress(static_cast<Group>(g), static_cast<int>(n / kPerSource))});
      if (static_cast<int>(cur.sources.size()) == opt_.client_shard_max) {
        specs_.push_back(cur);
        cur.sources.clear();
      }
    }
    if (!cur.sources.empty()) specs_.push_back(cur);
  }
  for (const auto& s : specs_) {
    if (s.server) Spawn(s);
  }
  for (const auto& s : specs_) {
    if (!s.server) Spawn(s);
  }
  auto t0 = std::chrono::steady_clock::now();
  WaitEstablished(want);
  Log("established " + std::to_string(opt_.total) + " connections in " + std::to_string(static_cast<int>(MsSince(t0))) +
      " ms over " + std::to_string(children_.size()) + " processes");

  if (opt_.hold) {
    std::fprintf(stderr, "holding: netns %s, %d connections on %s:%u; press enter to run the kills\n", ns_.c_str(),
                 opt_.total, kServer, kPort);
    std::getchar();
  }
  std::vector<Kill> kills;
  for (int round = 0; round < opt_.rounds; ++round) {
    // Rotate the order so no tool always runs first (or right after a refill).
    for (int i = 0; i < kTools; ++i) kills.push_back(DoKill(static_cast<Tool>((round + i) % kTools), want));
  }

  std::array<double, kTools> ms{}, dump{}, destroy{};
  std::array<long, kTools> resets{}, runs{};
  long collateral = 0;
  bool ok = true;
  std::printf("| round | tool | tenant | wall ms | reset (reported) | clients reset | tenant left | collateral |\n");
  std::printf("|---|---|---|---|---|---|---|---|\n");
  for (size_t i = 0; i < kills.size(); ++i) {
    const Kill& k = kills[i];
    std::printf("| %zu | %s | %s | %.1f | %ld | %ld | %ld | %ld |\n", i / kTools + 1, k.tool.c_str(), kGroupName[k.group],
                k.wall_ms, k.reported, k.client_resets, k.left, k.collateral);
    ms[k.tool_id] += k.wall_ms;
    dump[k.tool_id] += k.hs_dump_ms;
    destroy[k.tool_id] += k.hs_destroy_ms;
    resets[k.tool_id] += k.client_resets;
    ++runs[k.tool_id];
    collateral += k.collateral;
    ok = ok && k.collateral == 0 && k.client_resets == opt_.tenant && k.left == 0 && k.reported == opt_.tenant;
  }
  std::printf("\nper kill: %d established connections on port %u, %d of them the tenant's; %zu processes hold them "
              "(%s)\n",
              opt_.total, kPort, opt_.tenant, children_.size(),
              opt_.passive_holders ? "passive holders: idle during the kill" : "active holders: each reset handled as it arrives");
  std::printf("TCP hash: %s\n", opt_.shared_hash ? "one for both namespaces (kernel default)"
                                                 : "the clients' namespace has its own (clients are remote in production)");
  for (int t = 0; t < kTools; ++t) {
    std::printf("%-32s %8.1f ms per kill, %7.0f resets/s", kToolName[t], ms[t] / runs[t], resets[t] / (ms[t] / 1000.0));
    if (t == kHsJson) std::printf("  (inside: dump %.1f ms, destroy %.1f ms)", dump[t] / runs[t], destroy[t] / runs[t]);
    std::printf("\n");
  }
  std::printf("ratio ss -K / headshift --json: %.2f\n", ms[kSs] / ms[kHsJson]);
  std::printf("ratio ss -K / headshift (text): %.2f\n", ms[kSs] / ms[kHsText]);
  std::printf("collateral: %ld\n", collateral);
  std::printf("%s\n", ok ? "RESULT OK: every tenant connection reset, nobody else touched"
                         : "RESULT WRONG: see the table (missed tenant connections or collateral)");
  return ok ? 0 : 1;
}

// SIGINT/SIGTERM: remove the namespace (children die with their parent: PR_SET_PDEATHSIG).
char g_netns_for_signal[2][64];
void OnSignal(int sig) {
  for (auto* name : g_netns_for_signal) {
    pid_t pid = fork();  // async-signal-safe, as are execv and waitpid
    if (pid == 0) {
      char* const args[] = {const_cast<char*>("/usr/sbin/ip"), const_cast<char*>("netns"), const_cast<char*>("del"), name,
                            nullptr};
      execv(args[0], args);
      _exit(127);
    }
    if (pid > 0) waitpid(pid, nullptr, 0);
  }
  _exit(128 + sig);
}

}  // namespace

int main(int argc, char** argv) {
  signal(SIGPIPE, SIG_IGN);
  std::snprintf(g_netns_for_signal[0], sizeof g_netns_for_signal[0], "hsdp%db", static_cast<int>(getpid()));
  std::snprintf(g_netns_for_signal[1], sizeof g_netns_for_signal[1], "hsdp%dc", static_cast<int>(getpid()));
  signal(SIGINT, OnSignal);
  signal(SIGTERM, OnSignal);
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "%s needs a value\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--total") o.total = std::stoi(next());
    else if (a == "--tenant") o.tenant = std::stoi(next());
    else if (a == "--rounds") o.rounds = std::stoi(next());
    else if (a == "--server-shards") o.server_shards = std::stoi(next());
    else if (a == "--headshift") o.headshift = next();
    else if (a == "--quiet") o.quiet = true;
    else if (a == "--hold") o.hold = true;
    else if (a == "--passive-holders") o.passive_holders = true;
    else if (a == "--shared-hash") o.shared_hash = true;
    else {
      std::fprintf(stderr,
                   "usage: %s [--total N (60000)] [--tenant N (10000)] [--rounds N (2)] [--server-shards N (6)] "
                   "[--passive-holders] [--shared-hash] [--headshift PATH] [--quiet] [--hold]\n",
                   argv[0]);
      return 2;
    }
  }
  try {
    Bench b(o);
    return b.Run();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "sessions_kill_bench: %s\n", e.what());
    return 1;
  }
}
