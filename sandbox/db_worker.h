// DbWorker: the one thread of the headscale stand-in that talks to PostgreSQL, so a slow query never
// stalls the epoll thread serving the streams. Jobs run in submission order on the worker's own
// NodeDirectory; a job hands its result back to the event loop itself (EventLoop::Post).
//
// Thread-safety: Submit() from any thread; Start() once; Shutdown() (also run by the destructor)
// finishes the queued jobs, then joins.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>

#include "sandbox/node_directory.h"

namespace headshift::sandbox {

class DbWorker {
 public:
  explicit DbWorker(NodeDirectory dir) : dir_(std::move(dir)) {}
  ~DbWorker() { Shutdown(); }
  DbWorker(const DbWorker&) = delete;
  DbWorker& operator=(const DbWorker&) = delete;

  void Start();
  void Submit(std::function<void(NodeDirectory&)> job);
  void Shutdown();

 private:
  void Loop();

  NodeDirectory dir_;
  std::thread thread_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void(NodeDirectory&)>> jobs_;
  bool stop_ = false;
};

}  // namespace headshift::sandbox
