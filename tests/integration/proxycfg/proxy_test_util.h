// Test helpers for proxycfg integration tests: a real HAProxy started from a config in a temp dir,
// small HTTP backends that answer with their name (and keep an upgraded 101 stream open), a
// directory snapshot to prove "nothing changed", and temp dirs. Traffic stays on 127.0.0.1.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace headshift::testing {

// A fresh directory /tmp/hspx-<pid>-XXXXXX, removed (with its contents) on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::string& path() const { return path_; }
  std::string operator/(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// Every regular file under `dir` (recursive, including dot-files) with its bytes and mode.
struct DirSnapshot {
  std::map<std::string, std::pair<std::string, unsigned>> files;
  bool operator==(const DirSnapshot& o) const { return files == o.files; }
};
DirSnapshot SnapshotDir(const std::string& dir);
std::string Describe(const DirSnapshot& s);

void WriteFile(const std::string& path, const std::string& content);
std::string ReadWholeFile(const std::string& path);

// An HTTP/1.1 backend on 127.0.0.1:<ephemeral>: GET → 200 with body = name; a request with
// `Upgrade:` → 101, then every line received is echoed back as "<name>:<line>\n" until the peer
// closes. Raw sockets because cpp-httplib cannot hand over a connection after a 101.
class NamedBackend {
 public:
  explicit NamedBackend(std::string name);
  ~NamedBackend();
  int port() const { return port_; }

 private:
  void Serve(int fd);
  std::string name_;
  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread accept_thread_;
  std::mutex mu_;
  std::vector<std::thread> conns_;
  std::vector<int> conn_fds_;
};

// A free TCP port on 127.0.0.1 (bound and released; HAProxy binds it right after).
int FreePort();

// HAProxy (Debian's /usr/sbin/haproxy) in the foreground with a generated config: a frontend on
// 127.0.0.1:<port> doing `use_backend %[req.hdr(host),lower,map(<map>)]`, admin runtime socket,
// and one backend per (name, port). Killed on destruction (and with PDEATHSIG if the test dies).
class HaproxyProcess {
 public:
  // `backends`: backend name -> server port; a negative port -P makes a health-checked server on
  // the closed port P, so that backend is DOWN.
  HaproxyProcess(const std::string& dir, const std::string& map_file, const std::map<std::string, int>& backends);
  ~HaproxyProcess();
  bool started() const { return pid_ > 0 && ready_; }
  int frontend_port() const { return port_; }
  const std::string& socket_path() const { return socket_; }
  const std::string& log() const { return log_path_; }

 private:
  pid_t pid_ = -1;
  bool ready_ = false;
  int port_ = 0;
  std::string socket_;
  std::string log_path_;
};

// GET / through HAProxy with a Host header; returns the body ("" on failure) (cpp-httplib).
std::string GetThroughProxy(int port, const std::string& host);

// A client connection upgraded with `Upgrade: tailscale-control-protocol` (101), like a
// tailscale control connection. Send() writes a line and returns the echoed line.
class UpgradedConnection {
 public:
  UpgradedConnection(int port, const std::string& host);
  ~UpgradedConnection();
  bool ok() const { return fd_ >= 0 && upgraded_; }
  std::string Echo(const std::string& line);
  // Closes with RST (SO_LINGER 0), as a reset of the session does.
  void Reset();

 private:
  int fd_ = -1;
  bool upgraded_ = false;
};

// Runs `argv` with `dir` made read-only by a bind mount in a private mount namespace (the test
// helper binary hspx_ro_exec does that), so even root cannot write there.
std::vector<std::string> ReadOnlyDirArgv(const std::string& dir, const std::vector<std::string>& argv);

}  // namespace headshift::testing
