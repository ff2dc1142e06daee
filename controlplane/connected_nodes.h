// ConnectedNodesReader: which of a given set of a control plane's nodes it holds connected right now,
// from its own view — the "back" signal that paces a session reset (playbooks/wave_pacer.h).
//
// Two sources, the cheaper first:
//   batcher  GET <debug_url>/debug/batcher with Accept: application/json →
//            {"connected_nodes": {"<node id>": {"connected": bool, "active_connections": n}},
//             "total_nodes": n} (headscale v0.29 hscontrol/debug.go debugBatcherJSON). A node is marked
//            connected only once its initial map was sent (mapper/batcher.go AddNode → markConnected):
//            "connected" means served, not merely dialled. ~60 bytes a node, no database, no peer maps.
//   api      GET /api/v1/node?user=<user> (Bearer key), field `online`. A user's listing leaves out its
//            tagged devices (no user since headscale 0.28): when a watched id is missing from it, the
//            whole node list is read from then on.
// The batcher is used when debug_url is set and answers; a failing batcher read falls back to the API
// for the rest of this reader's life (and says so in source()).
//
// Thread-safety: one instance per thread (it owns HTTP clients).
#pragma once

#include <cstdint>
#include <set>
#include <string>

#include "common/http_client.h"
#include "common/status.h"
#include "controlplane/headscale_client.h"

namespace headshift {

// The parsed /debug/batcher answer: the ids of the nodes marked connected. BadInput when `body` is
// not that JSON shape (an answer from something else is refused, never read as "nobody connected").
StatusOr<std::set<std::string>> ParseBatcherConnected(const std::string& body);

class ConnectedNodesReader {
 public:
  // `debug_url` may be empty (then only the API). `api_key` may be empty when debug_url answers.
  ConnectedNodesReader(std::string control_url, std::string api_key, std::string debug_url, int64_t timeout_ms);

  // Of `ids` (node ids as the API spells them), those connected now. `user` is the API's ?user= filter.
  // Failed when neither source could be read.
  StatusOr<std::set<std::string>> Connected(const std::set<std::string>& ids, const std::string& user);

  // "batcher" or "api": the source the last successful read used ("" before one).
  const std::string& source() const { return source_; }
  // Why the batcher is not used (empty while it is, or before the first read).
  const std::string& batcher_unused() const { return batcher_unused_; }

 private:
  StatusOr<std::set<std::string>> FromBatcher();
  StatusOr<std::set<std::string>> FromApi(const std::set<std::string>& ids, const std::string& user);

  std::string debug_url_;
  int64_t timeout_ms_;
  HeadscaleClient api_;
  HttpClient http_;
  bool use_batcher_;
  bool list_all_ = false;  // the user's listing missed a watched id (tagged devices): list every node
  std::string source_;
  std::string batcher_unused_;
};

}  // namespace headshift
