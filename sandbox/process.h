// Child processes of the sandbox lab: spawned as argv (no shell), optionally inside a named network
// namespace (/run/netns/<name>), with output to a log file; identified later by pid AND start time so
// a stop never hits a recycled pid.
//
// Thread-safety: plain functions; SpawnProcess forks, so call it from a thread that holds no locks
// the child needs (the child only calls async-signal-safe functions before exec).
#pragma once

#include <string>
#include <sys/types.h>
#include <vector>

#include "common/status.h"

namespace headshift::sandbox {

struct SpawnOptions {
  std::vector<std::string> argv;  // argv[0] is an absolute path
  std::string netns;              // name under /run/netns or a path; empty: the caller's namespace
  std::string log_file;           // stdout+stderr appended here; empty: /dev/null
  // true: double fork + setsid, so the process is not our child and outlives us (lab processes).
  // false: a direct child that gets SIGTERM when the spawning thread exits (tests).
  bool detach = true;
};

struct SpawnedProcess {
  pid_t pid = -1;
  int64_t start_time = -1;  // /proc/<pid>/stat field 22 (clock ticks since boot)
};

StatusOr<SpawnedProcess> SpawnProcess(const SpawnOptions& opts);

// Start time of `pid` from /proc, or -1 if it does not exist (or is a zombie).
int64_t ProcessStartTime(pid_t pid);
// True if `pid` runs and has start time `start_time`.
bool ProcessAlive(pid_t pid, int64_t start_time);
// `first_signal` (SIGTERM), wait up to grace_ms, then SIGKILL and wait; reaps it if it is our child. No-op when the
// pid is gone or belongs to another process now. Returns true if it is gone afterwards.
bool StopProcess(pid_t pid, int64_t start_time, int64_t grace_ms, int first_signal = 15 /*SIGTERM*/);

// Path of the running executable's directory (/proc/self/exe).
std::string SelfDir();

}  // namespace headshift::sandbox
