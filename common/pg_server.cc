#include "common/pg_server.h"

#include <csignal>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <pwd.h>
#include <random>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <thread>
#include <fcntl.h>
#include <unistd.h>

#include "common/pg.h"
#include "common/subprocess.h"

namespace fs = std::filesystem;

namespace headshift {

std::string PostgresBinDir() {
  std::string best;
  int best_ver = -1;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator("/usr/lib/postgresql", ec)) {
    int v = std::atoi(e.path().filename().c_str());
    if (v > best_ver && fs::exists(e.path() / "bin" / "initdb")) {
      best_ver = v;
      best = (e.path() / "bin").string();
    }
  }
  return best;
}

PgServer::~PgServer() {
  if (!persistent_) Stop();
}

std::string PgServer::Dsn(const std::string& dbname) const {
  return "host=" + dir_ + " port=" + std::to_string(port_) + " user=postgres dbname=" + dbname;
}

Status PgServer::Start(const std::string& dir, bool persistent) {
  persistent_ = persistent;
  std::string bin = PostgresBinDir();
  if (bin.empty()) return Status::Failed("PostgreSQL server binaries not found", "run scripts/setup");
  passwd* pw = getpwnam("postgres");
  if (!pw) return Status::Failed("no `postgres` system user", "install the postgresql package (scripts/setup)");
  if (dir.empty()) {
    char tmpl[] = "/tmp/hs-pg-XXXXXX";
    if (!mkdtemp(tmpl)) return Status::Failed(std::string("mkdtemp: ") + std::strerror(errno));
    dir_ = tmpl;
    owns_dir_ = true;
  } else {
    dir_ = dir;
    fs::create_directories(dir_);
  }
  chmod(dir_.c_str(), 0755);
  if (chown(dir_.c_str(), pw->pw_uid, pw->pw_gid) != 0) {
    return Status::Failed("cannot chown " + dir_ + " to postgres: " + std::strerror(errno), "run as root");
  }
  data_dir_ = dir_ + "/data";
  std::random_device rd;
  port_ = 20000 + static_cast<int>(rd() % 30000);

  // initdb as postgres.
  pid_t pid = fork();
  if (pid == 0) {
    if (setgid(pw->pw_gid) != 0 || setuid(pw->pw_uid) != 0) _exit(126);
    int devnull = open("/dev/null", O_WRONLY);
    dup2(devnull, 1);
    std::string initdb = bin + "/initdb";
    execl(initdb.c_str(), "initdb", "-D", data_dir_.c_str(), "-A", "trust", "-U", "postgres", "-E", "UTF8",
          "--no-sync", "--locale=C", static_cast<char*>(nullptr));
    _exit(127);
  }
  int st = 0;
  waitpid(pid, &st, 0);
  if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) return Status::Failed("initdb failed in " + data_dir_);

  pid = fork();
  if (pid == 0) {
    if (setgid(pw->pw_gid) != 0 || setuid(pw->pw_uid) != 0) _exit(126);
    // After the uid change (which clears it): die with the parent unless persistent.
    if (!persistent) prctl(PR_SET_PDEATHSIG, SIGQUIT);
    if (persistent) setsid();
    std::string log = dir_ + "/postgres.log";
    int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    dup2(fd, 1);
    dup2(fd, 2);
    int devnull = open("/dev/null", O_RDONLY);
    dup2(devnull, 0);
    std::string postgres = bin + "/postgres";
    std::string port = std::to_string(port_);
    execl(postgres.c_str(), "postgres", "-D", data_dir_.c_str(), "-p", port.c_str(), "-k", dir_.c_str(), "-c",
          "listen_addresses=", "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
          "-c", "max_connections=400", "-c", "shared_buffers=256MB", "-c", "max_wal_size=4GB",
          static_cast<char*>(nullptr));
    _exit(127);
  }
  pid_ = pid;
  // Wait until it accepts connections.
  for (int i = 0; i < 300; ++i) {
    auto c = PgConn::Connect(Dsn(), 2000);
    if (c.ok()) return Status::Ok();
    int wst = 0;
    if (waitpid(pid_, &wst, WNOHANG) == pid_) {
      pid_ = -1;
      return Status::Failed("postgres exited at start; see " + dir_ + "/postgres.log");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  Stop();
  return Status::Failed("postgres did not accept connections within 15 s; see " + dir_ + "/postgres.log");
}

void PgServer::Stop() {
  if (pid_ > 0) {
    kill(pid_, SIGQUIT);  // immediate shutdown: throwaway data
    int st = 0;
    for (int i = 0; i < 200; ++i) {
      if (waitpid(pid_, &st, WNOHANG) != 0) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(25));
    }
    kill(pid_, SIGKILL);
    waitpid(pid_, &st, WNOHANG);
    pid_ = -1;
  }
  if (owns_dir_ && !dir_.empty()) {
    std::error_code ec;
    fs::remove_all(dir_, ec);
    owns_dir_ = false;
  }
}

StatusOr<std::string> PgServer::CreateDatabase(const std::string& name) {
  auto c = PgConn::Connect(Dsn(), 5000);
  if (!c.ok()) return c.status();
  std::string q = (*c)->QuoteIdent(name);
  HS_RETURN_IF_ERROR((*c)->ExecScript("DROP DATABASE IF EXISTS " + q + " WITH (FORCE)"));
  HS_RETURN_IF_ERROR((*c)->ExecScript("CREATE DATABASE " + q));
  return Dsn(name);
}

}  // namespace headshift
