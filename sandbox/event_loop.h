// EventLoop: a single-threaded epoll loop with fd handlers, one-shot timers and a thread-safe task
// queue. The sandbox's stand-in and client fleet use it to hold thousands of long-lived TCP streams
// on one thread each (no thread per connection).
//
// Handlers are keyed by fd plus a generation, so a handler removed (and its fd reused) while a batch
// of events is being dispatched is never called for the stale event.
//
// Thread-safety: everything runs on the loop thread except Post() and Stop(), which are safe from any
// thread (and Stop() from a signal handler is NOT safe; use a signalfd handler instead).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <queue>
#include <unordered_map>
#include <vector>

#include "common/status.h"

namespace headshift::sandbox {

// Milliseconds on CLOCK_MONOTONIC.
int64_t MonoMs();
// Milliseconds since the Unix epoch (CLOCK_REALTIME).
int64_t WallMs();

class EventLoop {
 public:
  using FdHandler = std::function<void(uint32_t events)>;
  using Task = std::function<void()>;

  EventLoop();
  ~EventLoop();
  EventLoop(const EventLoop&) = delete;
  EventLoop& operator=(const EventLoop&) = delete;

  // REQUIRES: fd not already added. `events` are EPOLL* flags.
  void Add(int fd, uint32_t events, FdHandler handler);
  void Modify(int fd, uint32_t events);
  // Removes the handler (does not close the fd).
  void Remove(int fd);

  // Runs `task` once at MonoMs() + delay_ms. Returns an id for CancelTimer.
  uint64_t After(int64_t delay_ms, Task task);
  void CancelTimer(uint64_t id);

  // Thread-safe: runs `task` on the loop thread soon.
  void Post(Task task);
  // Thread-safe: makes Run() return after the current iteration.
  void Stop();

  // Dispatches until Stop().
  void Run();

 private:
  struct Slot {
    uint32_t gen = 0;
    FdHandler handler;
  };
  void RunTimers();
  void DrainPosted();

  int epfd_ = -1;
  int wakefd_ = -1;
  bool stop_ = false;
  uint32_t next_gen_ = 1;
  std::vector<Slot> slots_;
  uint64_t next_timer_ = 1;
  std::priority_queue<std::pair<int64_t, uint64_t>, std::vector<std::pair<int64_t, uint64_t>>, std::greater<>>
      timer_heap_;
  std::unordered_map<uint64_t, Task> timers_;
  std::mutex mu_;
  std::vector<Task> posted_;  // guarded by mu_
};

}  // namespace headshift::sandbox
