// HeadscaleClient: the parts of a headscale control plane headshift reads — the Noise public key
// (`GET /key?v=N`, research/headscale.md §4) and the node list of a user (`GET /api/v1/node?user=`,
// §3, Bearer API key) and its ACL policy (`GET`/`PUT /api/v1/policy`, headscale.proto HeadscaleService
// GetPolicy/SetPolicy, v0.29). Works against real headscale and the sandbox stand-in alike.
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

// A node's policy as its API answers it (GetPolicyResponse, proto/headscale/v1/policy.proto).
struct PolicyRecord {
  bool set = false;         // false: database mode with no policy stored yet (policy is then "")
  std::string policy;       // HuJSON text, as stored (file mode: the file's bytes)
  std::string updated_at;   // RFC 3339 (database mode); empty in file mode
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

  // GET /api/v1/policy → {"policy", "updatedAt"}. Answers in both policy modes (file mode: the file's
  // content). A database-mode node with no policy stored answers an error "acl policy not found": returned
  // as set=false, not as a failure.
  StatusOr<PolicyRecord> GetPolicy();
  // PUT /api/v1/policy {"policy": text}: headscale validates it against its users and nodes, stores it
  // and reloads it live. Only in `policy.mode: database`; a file-mode node answers
  // "update is disabled" (Refused naming the mode). A policy headscale's validation rejects is BadInput
  // carrying headscale's message (the node keeps its previous policy); another error answer is Failed.
  // Returns the updatedAt headscale stored.
  StatusOr<std::string> SetPolicy(const std::string& policy);

  // DELETE /api/v1/node/{id}: headscale drops the node from its NodeStore, deletes its row (a row
  // already gone is no error: gorm's delete by id), frees its IPs and tells its peers
  // (hscontrol/state/state.go DeleteNode, v0.29). headshift uses it only for a node whose row it
  // already moved away (a "ghost" the node still holds in memory). NotFound-like answers are OK.
  // Waits at least kDeleteTimeoutMs: each delete waits for a NodeStore batch tick and recompiles the policy
  // under one lock, so a few deletes in flight on a busy node of 1,000+ devices answer in seconds, not ms.
  static constexpr int64_t kDeleteTimeoutMs = 30000;
  Status DeleteNode(const std::string& id);

 private:
  std::string base_url_;
  std::string api_key_;
  int64_t timeout_ms_;
  HttpClient http_;
};

}  // namespace headshift
