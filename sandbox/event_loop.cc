#include "sandbox/event_loop.h"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>

namespace headshift::sandbox {

int64_t MonoMs() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

int64_t WallMs() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

EventLoop::EventLoop() {
  epfd_ = epoll_create1(EPOLL_CLOEXEC);
  wakefd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  Add(wakefd_, EPOLLIN, [this](uint32_t) {
    uint64_t v;
    while (read(wakefd_, &v, sizeof v) > 0) {
    }
    DrainPosted();
  });
}

EventLoop::~EventLoop() {
  if (wakefd_ >= 0) close(wakefd_);
  if (epfd_ >= 0) close(epfd_);
}

void EventLoop::Add(int fd, uint32_t events, FdHandler handler) {
  if (static_cast<size_t>(fd) >= slots_.size()) slots_.resize(static_cast<size_t>(fd) + 1024);
  Slot& s = slots_[static_cast<size_t>(fd)];
  s.gen = next_gen_++;
  s.handler = std::move(handler);
  epoll_event ev{};
  ev.events = events;
  ev.data.u64 = (static_cast<uint64_t>(s.gen) << 32) | static_cast<uint32_t>(fd);
  epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev);
}

void EventLoop::Modify(int fd, uint32_t events) {
  Slot& s = slots_[static_cast<size_t>(fd)];
  epoll_event ev{};
  ev.events = events;
  ev.data.u64 = (static_cast<uint64_t>(s.gen) << 32) | static_cast<uint32_t>(fd);
  epoll_ctl(epfd_, EPOLL_CTL_MOD, fd, &ev);
}

void EventLoop::Remove(int fd) {
  if (fd < 0 || static_cast<size_t>(fd) >= slots_.size()) return;
  epoll_ctl(epfd_, EPOLL_CTL_DEL, fd, nullptr);
  Slot& s = slots_[static_cast<size_t>(fd)];
  s.gen = 0;
  s.handler = nullptr;
}

uint64_t EventLoop::After(int64_t delay_ms, Task task) {
  uint64_t id = next_timer_++;
  timers_.emplace(id, std::move(task));
  timer_heap_.emplace(MonoMs() + delay_ms, id);
  return id;
}

void EventLoop::CancelTimer(uint64_t id) { timers_.erase(id); }

void EventLoop::Post(Task task) {
  {
    std::lock_guard<std::mutex> l(mu_);
    posted_.push_back(std::move(task));
  }
  uint64_t one = 1;
  ssize_t n = write(wakefd_, &one, sizeof one);
  (void)n;
}

void EventLoop::Stop() {
  {
    std::lock_guard<std::mutex> l(mu_);
    posted_.push_back([this] { stop_ = true; });
  }
  uint64_t one = 1;
  ssize_t n = write(wakefd_, &one, sizeof one);
  (void)n;
}

void EventLoop::DrainPosted() {
  std::vector<Task> tasks;
  {
    std::lock_guard<std::mutex> l(mu_);
    tasks.swap(posted_);
  }
  for (auto& t : tasks) t();
}

void EventLoop::RunTimers() {
  int64_t now = MonoMs();
  while (!timer_heap_.empty() && timer_heap_.top().first <= now) {
    uint64_t id = timer_heap_.top().second;
    timer_heap_.pop();
    auto it = timers_.find(id);
    if (it == timers_.end()) continue;  // cancelled
    Task t = std::move(it->second);
    timers_.erase(it);
    t();
  }
}

void EventLoop::Run() {
  std::vector<epoll_event> events(1024);
  while (!stop_) {
    int timeout = -1;
    while (!timer_heap_.empty() && !timers_.count(timer_heap_.top().second)) timer_heap_.pop();
    if (!timer_heap_.empty()) {
      int64_t d = timer_heap_.top().first - MonoMs();
      timeout = d < 0 ? 0 : static_cast<int>(std::min<int64_t>(d, 1000));
    }
    int n = epoll_wait(epfd_, events.data(), static_cast<int>(events.size()), timeout);
    if (n < 0 && errno != EINTR) break;
    for (int i = 0; i < n; ++i) {
      uint64_t d = events[static_cast<size_t>(i)].data.u64;
      uint32_t gen = static_cast<uint32_t>(d >> 32);
      size_t fd = static_cast<uint32_t>(d);
      if (fd >= slots_.size() || slots_[fd].gen != gen || !slots_[fd].handler) continue;
      // Copy: the handler may Remove() itself.
      FdHandler h = slots_[fd].handler;
      h(events[static_cast<size_t>(i)].events);
    }
    RunTimers();
  }
}

}  // namespace headshift::sandbox
