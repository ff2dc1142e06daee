#include "common/subprocess.h"

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>
#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <optional>
#include <string_view>

#include "common/redact.h"

extern char** environ;

namespace headshift {

namespace {

// headshift's environment without the variables that carry a secret.
std::vector<char*> ChildEnvironment() {
  std::vector<char*> env;
  for (char** e = environ; e && *e; ++e) {
    std::string_view kv(*e);
    size_t eq = kv.find('=');
    if (eq != std::string_view::npos && ContainsSecret(kv.substr(eq + 1))) continue;
    env.push_back(*e);
  }
  env.push_back(nullptr);
  return env;
}

}  // namespace

StatusOr<ProcessResult> RunArgv(const std::vector<std::string>& argv, int64_t timeout_ms) {
  if (argv.empty()) return Status::BadInput("empty command");
  int pipefd[2];
  if (pipe2(pipefd, O_CLOEXEC) != 0) return Status::Failed(std::string("pipe: ") + std::strerror(errno));
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, pipefd[1], 1);
  posix_spawn_file_actions_adddup2(&fa, pipefd[1], 2);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t all, none;
  sigfillset(&all);
  sigemptyset(&none);
  posix_spawnattr_setsigdefault(&attr, &all);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
  posix_spawnattr_setpgroup(&attr, 0);
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  std::vector<char*> env = ChildEnvironment();
  pid_t pid = 0;
  int rc = posix_spawnp(&pid, args[0], &fa, &attr, args.data(), env.data());
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  close(pipefd[1]);
  if (rc != 0) {
    close(pipefd[0]);
    return Status::Failed("cannot run " + argv[0] + ": " + std::strerror(rc), "check the command path in the config");
  }
  using Clock = std::chrono::steady_clock;
  ProcessResult res;
  const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  // Once the command has exited, output still arriving from what it left in the background is
  // read for this long, not waited for.
  constexpr auto kDrainAfterExit = std::chrono::milliseconds(200);
  std::optional<Clock::time_point> exited_at;
  int status = 0;
  bool eof = false;
  char buf[4096];
  for (;;) {
    if (!exited_at) {
      pid_t w = waitpid(pid, &status, WNOHANG);
      if (w == pid) exited_at = Clock::now();
    }
    auto now = Clock::now();
    if (exited_at && (eof || now - *exited_at >= kDrainAfterExit)) break;
    if (!exited_at && now >= deadline) {
      res.timed_out = true;
      kill(-pid, SIGKILL);
      kill(pid, SIGKILL);
      break;
    }
    // Short waits while output may still come: an exit is noticed within 20 ms even if the pipe
    // stays open; a closed pipe (eof) means only the exit is awaited.
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now).count();
    int wait_ms = static_cast<int>(std::clamp<int64_t>(left, 1, 20));
    pollfd p{eof ? -1 : pipefd[0], POLLIN, 0};
    int n = poll(&p, 1, wait_ms);
    if (n <= 0 || eof) continue;
    ssize_t r = read(pipefd[0], buf, sizeof buf);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) {
      eof = true;
      continue;
    }
    if (res.output.size() < 65536) res.output.append(buf, static_cast<size_t>(r));
  }
  close(pipefd[0]);
  if (!exited_at) {
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
  }
  if (!res.timed_out && WIFEXITED(status)) res.exit_code = WEXITSTATUS(status);
  return res;
}

}  // namespace headshift
