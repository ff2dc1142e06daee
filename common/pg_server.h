// PgServer: a throwaway PostgreSQL server for tests, the sandbox and benchmarks. initdb into a
// fresh temp dir owned by the `postgres` system user (PostgreSQL refuses to run as root), listens
// only on a unix socket in that dir with a random port number, and is stopped by the destructor.
// If the owning process dies without running destructors, the server gets SIGQUIT through
// PR_SET_PDEATHSIG, so no server outlives its test.
//
// Thread-safety: Start/Stop from one thread; CreateDatabase is safe from any thread.
#pragma once

#include <string>
#include <sys/types.h>

#include "common/status.h"

namespace headshift {

class PgServer {
 public:
  PgServer() = default;
  ~PgServer();
  PgServer(const PgServer&) = delete;
  PgServer& operator=(const PgServer&) = delete;

  // `dir`: empty = a new mkdtemp dir under /tmp. With `persistent`, the server is not tied to this
  // process's life (the sandbox keeps it across `up` and `down`).
  Status Start(const std::string& dir = "", bool persistent = false);
  void Stop();

  bool running() const { return pid_ > 0; }
  const std::string& socket_dir() const { return dir_; }
  int port() const { return port_; }
  pid_t pid() const { return pid_; }
  // DSN for `dbname` as the postgres superuser over the unix socket.
  std::string Dsn(const std::string& dbname = "postgres") const;
  // CREATE DATABASE (dropping an existing one of that name first). Returns its DSN.
  StatusOr<std::string> CreateDatabase(const std::string& name);

 private:
  std::string dir_;
  std::string data_dir_;
  int port_ = 0;
  pid_t pid_ = -1;
  bool owns_dir_ = false;
  bool persistent_ = false;
};

// The directory holding initdb/postgres (/usr/lib/postgresql/<newest>/bin), or "" if not installed.
std::string PostgresBinDir();

}  // namespace headshift
