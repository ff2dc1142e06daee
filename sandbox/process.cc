#include "sandbox/process.h"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

namespace headshift::sandbox {
namespace {

// Child side: namespace, session, fds, signal state, exec. Only async-signal-safe calls.
[[noreturn]] void ExecChild(const std::vector<char*>& argv, const char* netns_path, const char* log, int report_fd,
                            bool detach, pid_t parent) {
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  for (int s = 1; s < 32; ++s) {
    if (s != SIGKILL && s != SIGSTOP) signal(s, SIG_DFL);
  }
  if (detach) {
    setsid();
  } else {
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != parent) _exit(125);
  }
  if (netns_path[0]) {
    int fd = open(netns_path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || setns(fd, CLONE_NEWNET) != 0) {
      int e = errno;
      ssize_t n = write(report_fd, &e, sizeof e);
      (void)n;
      _exit(126);
    }
    close(fd);
  }
  int in = open("/dev/null", O_RDONLY);
  int out = log[0] ? open(log, O_WRONLY | O_CREAT | O_APPEND, 0644) : open("/dev/null", O_WRONLY);
  dup2(in, 0);
  dup2(out, 1);
  dup2(out, 2);
  // Close everything else we may have inherited (sockets, epoll fds, pipes) except the report pipe,
  // which is close-on-exec and tells the parent the exec happened.
  for (int fd = 3; fd < 1024; ++fd) {
    if (fd != report_fd) close(fd);
  }
  execv(argv[0], argv.data());
  int e = errno;
  ssize_t n = write(report_fd, &e, sizeof e);
  (void)n;
  _exit(127);
}

}  // namespace

StatusOr<SpawnedProcess> SpawnProcess(const SpawnOptions& opts) {
  if (opts.argv.empty()) return Status::BadInput("empty argv");
  std::vector<char*> argv;
  for (const auto& a : opts.argv) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  std::string netns_path = opts.netns;
  if (!netns_path.empty() && netns_path.find('/') == std::string::npos) netns_path = "/run/netns/" + netns_path;

  // errpipe: exec errors (close-on-exec, so EOF without data = exec succeeded).
  // pidpipe: the grandchild's pid in detach mode.
  int errpipe[2], pidpipe[2];
  if (pipe2(errpipe, O_CLOEXEC) != 0 || pipe2(pidpipe, O_CLOEXEC) != 0) {
    return Status::Failed(std::string("pipe: ") + std::strerror(errno));
  }
  pid_t parent = getpid();
  pid_t child = fork();
  if (child < 0) return Status::Failed(std::string("fork: ") + std::strerror(errno));
  if (child == 0) {
    close(errpipe[0]);
    close(pidpipe[0]);
    if (opts.detach) {
      pid_t grand = fork();
      if (grand != 0) {
        ssize_t n = write(pidpipe[1], &grand, sizeof grand);
        (void)n;
        _exit(grand > 0 ? 0 : 1);
      }
    }
    ExecChild(argv, netns_path.c_str(), opts.log_file.c_str(), errpipe[1], opts.detach, parent);
  }
  close(errpipe[1]);
  close(pidpipe[1]);
  pid_t pid = child;
  if (opts.detach) {
    pid_t grand = -1;
    ssize_t n = read(pidpipe[0], &grand, sizeof grand);
    int st = 0;
    waitpid(child, &st, 0);
    if (n != sizeof grand || grand <= 0) {
      close(errpipe[0]);
      close(pidpipe[0]);
      return Status::Failed("fork failed while starting " + opts.argv[0]);
    }
    pid = grand;
  }
  close(pidpipe[0]);
  int err = 0;
  ssize_t n;
  do {
    n = read(errpipe[0], &err, sizeof err);
  } while (n < 0 && errno == EINTR);
  close(errpipe[0]);
  if (n == sizeof err) {
    if (!opts.detach) waitpid(pid, nullptr, 0);
    return Status::Failed("cannot start " + opts.argv[0] + (opts.netns.empty() ? "" : " in netns " + opts.netns) +
                          ": " + std::strerror(err));
  }
  SpawnedProcess p;
  p.pid = pid;
  p.start_time = ProcessStartTime(pid);
  return p;
}

int64_t ProcessStartTime(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string s((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  size_t rp = s.rfind(')');
  if (rp == std::string::npos) return -1;
  std::istringstream rest(s.substr(rp + 2));
  std::string field;
  // Fields after the comm: state is field 3; starttime is field 22.
  for (int f = 3; f <= 22; ++f) {
    if (!(rest >> field)) return -1;
    if (f == 3 && (field == "Z" || field == "X")) return -1;
  }
  return std::stoll(field);
}

bool ProcessAlive(pid_t pid, int64_t start_time) {
  if (pid <= 0) return false;
  int64_t st = ProcessStartTime(pid);
  return st >= 0 && (start_time < 0 || st == start_time);
}

bool StopProcess(pid_t pid, int64_t start_time, int64_t grace_ms, int first_signal) {
  auto gone = [&] {
    int st = 0;
    if (waitpid(pid, &st, WNOHANG) == pid) return true;
    return !ProcessAlive(pid, start_time);
  };
  if (gone()) return true;
  kill(pid, first_signal);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(grace_ms);
  while (std::chrono::steady_clock::now() < deadline) {
    if (gone()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  if (!gone()) kill(pid, SIGKILL);
  for (int i = 0; i < 300; ++i) {
    if (gone()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return false;
}

std::string SelfDir() {
  std::error_code ec;
  auto p = std::filesystem::read_symlink("/proc/self/exe", ec);
  return ec ? "" : p.parent_path().string();
}

}  // namespace headshift::sandbox
