// SessionSnapshot: the tenant's sessions on one session host at one moment — each socket's exact
// identity (tuple and cookie) — recorded without touching them. A migration snapshots before the
// route flips and later kills only sockets of the snapshot that still exist (same cookie), so
// connections made through the new route survive.
//
// The snapshot also records the namespace's identity (nsfs inode) and the kernel boot id: cookies
// are only unique within one boot, and a recreated namespace holds different sockets, so
// KillSnapshot refuses a snapshot from another boot or namespace.
//
// File form (SaveSnapshots/LoadSnapshots): {"format": "headshift-session-snapshot", "version": 1,
// "snapshots": [ToJson(), ...]}, written atomically with mode 0600 (client addresses are personal
// data).
//
// Thread-safety: a value.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/status.h"
#include "dataplane/diag_socket.h"

namespace headshift {

struct SessionSnapshot {
  std::string host;             // session host name
  std::string netns;            // the namespace as given
  uint64_t netns_inode = 0;     // Netns::inode() when taken
  std::string boot_id;          // /proc/sys/kernel/random/boot_id when taken
  std::vector<uint16_t> ports;  // the proxy ports the selection used
  std::vector<std::string> clients;  // the client prefixes (informational)
  int64_t taken_at_ms = 0;      // Unix time in milliseconds
  std::vector<DiagSocket> sockets;

  nlohmann::json ToJson() const;
  // BadInput naming the field when the JSON is not a snapshot.
  static StatusOr<SessionSnapshot> FromJson(const nlohmann::json& j);
};

Status SaveSnapshots(const std::string& path, const std::vector<SessionSnapshot>& snapshots);
// BadInput naming the file when it is missing, not JSON or not a snapshot file.
StatusOr<std::vector<SessionSnapshot>> LoadSnapshots(const std::string& path);

// The running kernel's boot id (empty if unreadable).
std::string CurrentBootId();

}  // namespace headshift
