#include "sandbox/db_worker.h"

namespace headshift::sandbox {

void DbWorker::Start() {
  thread_ = std::thread([this] { Loop(); });
}

void DbWorker::Submit(std::function<void(NodeDirectory&)> job) {
  std::lock_guard<std::mutex> l(mu_);
  jobs_.push_back(std::move(job));
  cv_.notify_one();
}

void DbWorker::Shutdown() {
  {
    std::lock_guard<std::mutex> l(mu_);
    stop_ = true;
    cv_.notify_one();
  }
  if (thread_.joinable()) thread_.join();
}

void DbWorker::Loop() {
  for (;;) {
    std::function<void(NodeDirectory&)> job;
    {
      std::unique_lock<std::mutex> l(mu_);
      cv_.wait(l, [this] { return stop_ || !jobs_.empty(); });
      if (stop_ && jobs_.empty()) return;
      job = std::move(jobs_.front());
      jobs_.pop_front();
    }
    job(dir_);
  }
}

}  // namespace headshift::sandbox
