// OnEachHost: runs one function per session host, all hosts at once (one thread each), and returns
// the results in host order.
//
// Why: session hosts are independent (separate namespaces, or the proxies of separate machines).
// One after the other, the clients on the last host would wait for every other host's dump and
// resets before theirs start, and a tenant's reconnects would arrive host by host.
//
// REQUIRES: fn(i) is safe to run concurrently for different i (each SessionTable is used by one
// thread; SockDiag, Netns and the logging sink are per-table or thread-safe).
#pragma once

#include <functional>
#include <optional>
#include <thread>
#include <vector>

namespace headshift {

template <typename T>
std::vector<T> OnEachHost(size_t hosts, const std::function<T(size_t)>& fn) {
  std::vector<std::optional<T>> results(hosts);
  if (hosts == 1) {
    results[0].emplace(fn(0));
  } else {
    std::vector<std::thread> threads;
    threads.reserve(hosts);
    for (size_t i = 0; i < hosts; ++i) threads.emplace_back([&results, &fn, i] { results[i].emplace(fn(i)); });
    for (auto& t : threads) t.join();
  }
  std::vector<T> out;
  out.reserve(hosts);
  for (auto& r : results) out.push_back(std::move(*r));
  return out;
}

}  // namespace headshift
