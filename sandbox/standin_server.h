// StandinServer: the sandbox's STAND-IN for a headscale control-plane node (headscale itself cannot be
// installed here). It implements only what headshift and the client fleet touch
// (research/headscale.md §2–§4):
//   GET  /key?v=N            {"publicKey": "mkey:…"} with the configured Noise key
//   POST /ts2021 (Upgrade: tailscale-control-protocol) → 101, then the long-lived stream of
//                            sandbox/wire.h: a node is served only if a row with that node key AND
//                            machine key exists for this cluster_id, not deleted, not expired; else
//                            "ERR 404 node not found" and close. Keep-alives carry the cluster id.
//   GET  /api/v1/node[?user=NAME]  headscale-shaped JSON (id as string, nodeKey, machineKey,
//                            user.name, online from live streams, lastSeen); 401 without the Bearer key
//   GET  /health             {"status":"pass", "mode", "reloads", "cached_nodes", "streams", "dropped"}
//   GET  /debug/batcher      headscale's debug endpoint (hscontrol/debug.go, v0.29): with Accept:
//                            application/json {"connected_nodes": {"<id>": {"connected", "active_connections"}},
//                            "total_nodes"}; else its text form. Connected = a stream is being served.
// Lookup modes: per-request (a DB query per connect, batched; headscale <= 0.26 and the cluster_id
// fork) or cached (all rows loaded at start and on SIGHUP, like the >= 0.27 NodeStore: rows inserted
// later are rejected until a reload). With `reload_drops_streams` a reload behaves like a restart of
// headscale (its only way to reload nodes): every connection is closed and every node starts offline,
// so the devices of every tenant on this node reconnect. On disconnect of a node's last session it waits the grace period
// (headscale: 10 s), then writes last_seen and the client's endpoints to the row.
//
// One epoll thread serves every connection (thousands of streams on two cores); one worker thread
// talks to PostgreSQL so a slow query never stalls the streams. HTTP parsing is a minimal hand-written
// HTTP/1.1 request reader on purpose: cpp-httplib is thread-per-connection and cannot hand an upgraded
// socket to an epoll loop.
//
// Layout: http_request (the request reader), node_json (the API's JSON), db_worker (the DB thread),
// standin_server.cc (connections, HTTP endpoints, signals) and standin_sessions.cc (control streams
// and sessions), over standin_server_impl.h.
//
// Thread-safety: Start() and Run() from one thread; Stop() from any thread.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "common/status.h"

namespace headshift::sandbox {

enum class LookupMode { kPerRequest, kCached };
const char* LookupModeName(LookupMode m);
StatusOr<LookupMode> ParseLookupMode(const std::string& s);

struct StandinOptions {
  std::string cluster_id;               // value of nodes.cluster_id this node serves
  std::vector<std::string> listen;      // "ip:port" (port 0 = any); default 127.0.0.1:0
  std::string dsn;                      // libpq DSN of the database holding this cluster's rows
  std::string noise_key;                // "mkey:<64 hex>" answered by /key
  std::string api_key;                  // Bearer key for /api/v1
  LookupMode mode = LookupMode::kPerRequest;
  int64_t keepalive_ms = 1000;
  int64_t disconnect_grace_ms = 10000;  // headscale waits up to 10 s for a reconnect
  bool reload_drops_streams = false;    // SIGHUP acts as a restart: all connections close, all offline
  // A slow control plane on purpose: at most this many new control streams are served per second
  // (token bucket, burst of a tenth of a second, at least 1); the others wait in line, connected but not
  // served yet, as under a reconnect storm on real headscale. 0 = as fast as it can.
  int64_t absorb_per_s = 0;
  std::string ready_file;               // written (JSON: pid, listen) once serving
};

class StandinServer {
 public:
  explicit StandinServer(StandinOptions options);
  ~StandinServer();
  StandinServer(const StandinServer&) = delete;
  StandinServer& operator=(const StandinServer&) = delete;

  // Blocks SIGHUP/SIGINT/SIGTERM in the calling thread (they are read through a signalfd), binds the
  // listeners, loads the cache in cached mode, starts the DB worker and writes the ready file.
  Status Start();
  // Serves until SIGINT/SIGTERM or Stop().
  void Run();
  void Stop();
  // Bound addresses ("ip:port"), valid after Start().
  std::vector<std::string> bound() const;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace headshift::sandbox
