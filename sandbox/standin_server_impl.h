// StandinServer::Impl: the state of one headscale stand-in (sandbox/standin_server.h), shared by its
// two halves:
//   standin_server.cc    start, signals and reload, accepting connections, the HTTP endpoints
//                        (/key, /health, /ts2021 upgrade, /api/v1/node), buffered socket I/O;
//   standin_sessions.cc  the control streams: MAP lookups (batched on the DB worker or from the
//                        cache), accept/reject, keep-alives, sessions and their disconnect grace,
//                        last_seen/endpoint writes, and the restart-like drop of everything.
// Private to those two files.
//
// Thread-safety: every member runs on the event loop's thread, except Stop() (any thread) and the
// jobs given to worker_, which touch only their NodeDirectory and post results back to the loop.
#pragma once

#include <sys/types.h>
#include <unistd.h>

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "sandbox/db_worker.h"
#include "sandbox/event_loop.h"
#include "sandbox/http_request.h"
#include "sandbox/node_directory.h"
#include "sandbox/standin_server.h"

namespace headshift::sandbox {

using NodeCache = std::unordered_map<std::string, std::vector<StandinNode>>;  // by node_key
// The cache of cached mode: every row of the cluster, by node key.
std::shared_ptr<const NodeCache> BuildCache(std::vector<StandinNode> nodes);

class StandinServer::Impl {
 public:
  explicit Impl(StandinOptions o) : opt_(std::move(o)), worker_(NodeDirectory(opt_.dsn, opt_.cluster_id)) {}
  ~Impl() {
    worker_.Shutdown();
    for (auto& [fd, c] : conns_) close(fd);
    for (int fd : listeners_) close(fd);
    if (sigfd_ >= 0) close(sigfd_);
  }

  Status Start();
  void Run() { loop_.Run(); }
  void Stop() { loop_.Stop(); }
  std::vector<std::string> bound() const { return bound_; }

 private:
  enum class State { kRequest, kAwaitMap, kLookup, kStreaming, kApiWaiting, kClosing };
  struct Conn {
    int fd = -1;
    uint64_t serial = 0;
    State state = State::kRequest;
    std::string in, out;
    std::string node_key, machine_key, endpoints;
    int64_t node_id = 0;
    bool close_after_flush = false;
    bool want_out = false;  // EPOLLOUT registered
  };
  struct Session {
    int count = 0;
    int64_t node_id = 0;
    std::string endpoints;
    uint64_t offline_timer = 0;
  };
  struct Admission {  // a stream waiting for the absorb limit (StandinOptions::absorb_per_s)
    int fd;
    uint64_t serial;
    StandinNode node;
  };
  struct PendingLookup {
    int fd;
    uint64_t serial;
    std::string node_key, machine_key;
  };

  void OnAccept(int lfd);
  void OnConnEvent(int fd, uint32_t events);
  void Process(int fd, uint64_t serial);
  void HandleHttp(Conn& c, const HttpRequest& req);
  void HandleMap(Conn& c, const std::string& line);
  void Decide(Conn& c, const std::vector<StandinNode>* candidates, bool db_error);
  void Serve(Conn& c, const StandinNode& node);
  void Admit();
  std::string BatcherDebug(bool json) const;
  void Send(Conn& c, const std::string& data);
  void SendAndClose(Conn& c, const std::string& data);
  void Flush(Conn& c);
  void Close(Conn& c);
  Conn* Find(int fd, uint64_t serial);
  void KickLookups();
  void QueueWrite(NodeWrite w);
  void KickWrites();
  void KeepAliveTick();
  void OnSignal();
  void Reload();
  void DropEverything();
  std::string NodesJson(const std::vector<StandinNode>& nodes);
  bool Online(const std::string& node_key) const;

  StandinOptions opt_;
  EventLoop loop_;
  DbWorker worker_;
  std::vector<int> listeners_;
  std::vector<std::string> bound_;
  int sigfd_ = -1;
  uint64_t next_serial_ = 1;
  std::unordered_map<int, std::unique_ptr<Conn>> conns_;
  std::unordered_map<std::string, Session> sessions_;        // by node_key
  std::unordered_map<std::string, std::string> last_seen_;  // cached mode: node_key -> RFC 3339
  std::shared_ptr<const NodeCache> cache_;
  int reloads_ = 0;
  int64_t dropped_ = 0;  // connections closed by restart-like reloads
  std::vector<PendingLookup> pending_lookups_;
  bool lookup_in_flight_ = false;
  std::vector<NodeWrite> pending_writes_;
  bool write_in_flight_ = false;
  int streams_ = 0;
  std::deque<Admission> admissions_;
  double tokens_ = 0;
  int64_t tokens_at_ms_ = 0;
  bool admit_timer_ = false;
};

}  // namespace headshift::sandbox
