#include "tests/integration/proxycfg/proxy_test_util.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <httplib.h>

namespace headshift::testing {
namespace fs = std::filesystem;

TempDir::TempDir() {
  std::string tmpl = "/tmp/hspx-" + std::to_string(getpid()) + "-XXXXXX";
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  path_ = mkdtemp(buf.data());
}

TempDir::~TempDir() {
  std::error_code ec;
  fs::remove_all(path_, ec);
}

DirSnapshot SnapshotDir(const std::string& dir) {
  DirSnapshot s;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(dir, ec); it != fs::recursive_directory_iterator(); ++it) {
    struct stat st{};
    if (::lstat(it->path().c_str(), &st) != 0) continue;
    std::string rel = fs::relative(it->path(), dir).string();
    if (S_ISDIR(st.st_mode)) {
      s.files[rel + "/"] = {"", st.st_mode & 07777};
    } else if (S_ISREG(st.st_mode)) {
      s.files[rel] = {ReadWholeFile(it->path()), st.st_mode & 07777};
    } else {
      s.files[rel + "@"] = {"", st.st_mode & 07777};  // sockets etc.: presence only
    }
  }
  return s;
}

std::string Describe(const DirSnapshot& s) {
  std::ostringstream o;
  for (const auto& [name, v] : s.files) o << name << " (" << std::oct << v.second << std::dec << "): " << v.first << "\n";
  return o.str();
}

void WriteFile(const std::string& path, const std::string& content) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << content;
}

std::string ReadWholeFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

NamedBackend::NamedBackend(std::string name) : name_(std::move(name)) {
  listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(listen_fd_, reinterpret_cast<sockaddr*>(&a), sizeof a);
  ::listen(listen_fd_, 64);
  socklen_t len = sizeof a;
  ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&a), &len);
  port_ = ntohs(a.sin_port);
  accept_thread_ = std::thread([this] {
    while (!stop_) {
      int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) {
        if (stop_) break;
        continue;
      }
      std::lock_guard<std::mutex> l(mu_);
      conn_fds_.push_back(fd);
      conns_.emplace_back([this, fd] { Serve(fd); });
    }
  });
}

NamedBackend::~NamedBackend() {
  stop_ = true;
  ::shutdown(listen_fd_, SHUT_RDWR);
  accept_thread_.join();
  ::close(listen_fd_);
  std::lock_guard<std::mutex> l(mu_);
  for (int fd : conn_fds_) ::shutdown(fd, SHUT_RDWR);
  for (auto& t : conns_) t.join();
}

void NamedBackend::Serve(int fd) {
  std::string buf;
  char c[4096];
  while (buf.find("\r\n\r\n") == std::string::npos) {
    ssize_t n = ::recv(fd, c, sizeof c, 0);
    if (n <= 0) {
      ::close(fd);
      return;
    }
    buf.append(c, static_cast<size_t>(n));
  }
  std::string head = buf.substr(0, buf.find("\r\n\r\n"));
  std::string lower = head;
  for (auto& ch : lower) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  if (lower.find("\r\nupgrade:") != std::string::npos) {
    std::string resp =
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: tailscale-control-protocol\r\nConnection: Upgrade\r\n\r\n";
    ::send(fd, resp.data(), resp.size(), MSG_NOSIGNAL);
    std::string rest = buf.substr(buf.find("\r\n\r\n") + 4);
    while (true) {
      size_t nl;
      while ((nl = rest.find('\n')) != std::string::npos) {
        std::string out = name_ + ":" + rest.substr(0, nl) + "\n";
        ::send(fd, out.data(), out.size(), MSG_NOSIGNAL);
        rest.erase(0, nl + 1);
      }
      ssize_t n = ::recv(fd, c, sizeof c, 0);
      if (n <= 0) break;
      rest.append(c, static_cast<size_t>(n));
    }
  } else {
    std::string resp = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: " +
                       std::to_string(name_.size()) + "\r\nConnection: close\r\n\r\n" + name_;
    ::send(fd, resp.data(), resp.size(), MSG_NOSIGNAL);
    ::shutdown(fd, SHUT_WR);
    while (::recv(fd, c, sizeof c, 0) > 0) {
    }
  }
  ::close(fd);
}

int FreePort() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

namespace {

bool CanConnectUnix(const std::string& path) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::strncpy(a.sun_path, path.c_str(), sizeof a.sun_path - 1);
  bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  ::close(fd);
  return ok;
}

bool CanConnectTcp(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(static_cast<uint16_t>(port));
  bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  ::close(fd);
  return ok;
}

}  // namespace

HaproxyProcess::HaproxyProcess(const std::string& dir, const std::string& map_file,
                               const std::map<std::string, int>& backends) {
  socket_ = dir + "/admin.sock";
  log_path_ = dir + "/haproxy.log";
  std::string cfg = dir + "/haproxy.cfg";
  std::ostringstream c;
  c << "global\n  stats socket " << socket_ << " level admin\n"
    << "defaults\n  mode http\n  timeout connect 2s\n  timeout client 30s\n  timeout server 30s\n"
    << "  timeout tunnel 1h\n";
  for (int attempt = 0; attempt < 5 && !ready_; ++attempt) {
    port_ = FreePort();
    std::ostringstream full;
    full << c.str() << "frontend fe\n  bind 127.0.0.1:" << port_ << "\n"
         << "  use_backend %[req.hdr(host),lower,map(" << map_file << ")]\n";
    for (const auto& [name, port] : backends) {
      if (port < 0) {  // a health-checked server on a closed port: the backend is DOWN
        full << "backend " << name << "\n  server s1 127.0.0.1:" << -port << " check inter 100 fall 1 rise 1\n";
      } else {
        full << "backend " << name << "\n  server s1 127.0.0.1:" << port << "\n";
      }
    }
    WriteFile(cfg, full.str());
    pid_ = fork();
    if (pid_ == 0) {
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      int log = ::open(log_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      dup2(log, 1);
      dup2(log, 2);
      execl("/usr/sbin/haproxy", "haproxy", "-db", "-f", cfg.c_str(), static_cast<char*>(nullptr));
      _exit(127);
    }
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (std::chrono::steady_clock::now() < deadline) {
      int st = 0;
      if (waitpid(pid_, &st, WNOHANG) == pid_) {  // exited (e.g. port taken): retry with another
        pid_ = -1;
        break;
      }
      if (CanConnectUnix(socket_) && CanConnectTcp(port_)) {
        ready_ = true;
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }
}

HaproxyProcess::~HaproxyProcess() {
  if (pid_ > 0) {
    ::kill(pid_, SIGTERM);
    int st = 0;
    waitpid(pid_, &st, 0);
  }
}

std::string GetThroughProxy(int port, const std::string& host) {
  httplib::Client cli("127.0.0.1", port);
  cli.set_connection_timeout(2, 0);
  cli.set_read_timeout(5, 0);
  auto res = cli.Get("/", httplib::Headers{{"Host", host}});
  if (!res || res->status != 200) return "";
  return res->body;
}

UpgradedConnection::UpgradedConnection(int port, const std::string& host) {
  fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  timeval tv{5, 0};
  setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(static_cast<uint16_t>(port));
  if (::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) return;
  std::string req = "POST /ts2021 HTTP/1.1\r\nHost: " + host +
                    "\r\nConnection: Upgrade\r\nUpgrade: tailscale-control-protocol\r\nContent-Length: 0\r\n\r\n";
  ::send(fd_, req.data(), req.size(), MSG_NOSIGNAL);
  std::string resp;
  char c;
  while (resp.find("\r\n\r\n") == std::string::npos) {
    if (::recv(fd_, &c, 1, 0) != 1) return;
    resp += c;
  }
  upgraded_ = resp.rfind("HTTP/1.1 101", 0) == 0;
}

UpgradedConnection::~UpgradedConnection() {
  if (fd_ >= 0) ::close(fd_);
}

std::string UpgradedConnection::Echo(const std::string& line) {
  std::string out = line + "\n";
  if (::send(fd_, out.data(), out.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(out.size())) return "";
  std::string got;
  char c;
  while (true) {
    if (::recv(fd_, &c, 1, 0) != 1) return "";
    if (c == '\n') return got;
    got += c;
  }
}

void UpgradedConnection::Reset() {
  linger l{1, 0};
  setsockopt(fd_, SOL_SOCKET, SO_LINGER, &l, sizeof l);
  ::close(fd_);
  fd_ = -1;
}

std::vector<std::string> ReadOnlyDirArgv(const std::string& dir, const std::vector<std::string>& argv) {
  std::vector<std::string> out{HSPX_RO_EXEC, dir, "--"};
  out.insert(out.end(), argv.begin(), argv.end());
  return out;
}

}  // namespace headshift::testing
