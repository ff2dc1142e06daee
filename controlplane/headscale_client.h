// HeadscaleClient: the parts of a headscale control plane headshift reads — the Noise public key
// (`GET /key?v=N`, research/headscale.md §4) and the node list of a user (`GET /api/v1/node?user=`,
// §3, Bearer API key). Works against real headscale and the sandbox stand-in alike.
//
// Thread-safety: one instance per thread (it owns an HttpClient).
#pragma once

#include <string>
#include <vector>

#include "common/http_client.h"
#include "common/status.h"

namespace headshift {

struct ControlNode {
  std::string id;           // headscale's uint64 id, as the string the API returns
  std::string name;         // givenName
  std::string node_key;     // nodekey:...
  std::string machine_key;  // mkey:...
  std::string user;
  bool online = false;
  std::string last_seen;
};

class HeadscaleClient {
 public:
  // `base_url` like http://10.0.3.2:8080 (no trailing slash needed); `api_key` may be empty when only
  // NoiseKey() is used.
  HeadscaleClient(std::string base_url, std::string api_key, int64_t timeout_ms);

  // The server's Noise public key ("mkey:..."), from GET /key?v=88.
  StatusOr<std::string> NoiseKey();
  // Nodes of `user` (all nodes when empty) as the control plane currently serves them (its in-memory view on >= 0.27).
  // Waits at least kListTimeoutMs whatever the client's timeout: a node of 1,000+ devices that is taking them
  // back after a restart answered the listing (~0.6 MB) in 0.3-0.4 s on 2 shared cores, and 5,000 are ~5x
  // that; a listing cut by a short timeout would read as "nobody back".
  static constexpr int64_t kListTimeoutMs = 30000;
  StatusOr<std::vector<ControlNode>> ListNodes(const std::string& user);

 private:
  std::string base_url_;
  std::string api_key_;
  int64_t timeout_ms_;
  HttpClient http_;
};

}  // namespace headshift
