// NodeDirectory: the headscale stand-in's view of the `nodes` table of one cluster — node lookup by
// node key scoped by cluster_id, listing (all / by user name) for the API, and headscale's writes on
// disconnect (last_seen, endpoints). Works with a TEXT or BIGINT cluster_id column (the value is sent
// as an untyped parameter, so PostgreSQL casts it to the column's type).
//
// Rows with deleted_at set are invisible; expiry is returned so callers decide "expired" at use time.
//
// Thread-safety: not thread-safe; the stand-in uses it from its one database worker thread. It
// reconnects on its own after a lost connection.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/pg.h"
#include "common/status.h"

namespace headshift::sandbox {

struct StandinNode {
  int64_t id = 0;
  std::string node_key, machine_key, disco_key;
  std::string endpoints;  // JSON text as stored
  std::string ipv4, ipv6, hostname, given_name, register_method, tags, approved_routes;
  int64_t expiry_ms = 0;       // 0 = never expires
  std::string last_seen;       // RFC 3339 UTC or ""
  std::string created_at;      // RFC 3339 UTC or ""
  std::string user_id, user_name, user_display_name, user_email, user_created_at, user_provider,
      user_provider_id, user_picture;

  bool ExpiredAt(int64_t wall_ms) const { return expiry_ms != 0 && expiry_ms <= wall_ms; }
};

// One write headscale does to a node row: on disconnect of the last session (last_seen + endpoints)
// or when the endpoints a client reports changed (last_seen_ms == 0: leave last_seen alone).
struct NodeWrite {
  int64_t id = 0;
  int64_t last_seen_ms = 0;
  std::string endpoints;
};

class NodeDirectory {
 public:
  NodeDirectory(std::string dsn, std::string cluster_id);

  // Nodes of this cluster whose node_key is in `node_keys` (not deleted).
  StatusOr<std::vector<StandinNode>> Lookup(const std::vector<std::string>& node_keys);
  // All nodes of this cluster (not deleted): the NodeStore load of headscale >= 0.27.
  StatusOr<std::vector<StandinNode>> ListAll();
  // Nodes of this cluster owned by the user named `user`.
  StatusOr<std::vector<StandinNode>> ListByUser(const std::string& user);
  // Applies writes in one statement, only to rows of this cluster.
  Status Write(const std::vector<NodeWrite>& writes);

 private:
  StatusOr<PgResult> Query(const std::string& where, const std::vector<std::string>& params,
                           const std::string& join = "");
  Status EnsureConnected();

  std::string dsn_;
  std::string cluster_id_;
  std::unique_ptr<PgConn> conn_;
};

// A PostgreSQL array literal of text elements ({"a","b"}), quoting every element.
std::string PgTextArray(const std::vector<std::string>& items);

}  // namespace headshift::sandbox
