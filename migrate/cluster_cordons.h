// ClusterCordons: the durable "receives no new tenants" flag of a cluster (kubectl cordon / Citus
// shouldhaveshards), stored in `headshift_clusters` next to the journal (the shared database, or the
// cluster's own database with journal.location: target). Drain sets it in its own transaction before
// moving anything, so a half-done drain never lets tenants land on the cluster.
//
// Thread-safety: not thread-safe (uses ClusterDatabases' cached connections).
#pragma once

#include <map>
#include <string>

#include "migrate/cluster_databases.h"

namespace headshift::migrate {

struct CordonState {
  bool cordoned = false;
  std::string reason;
  std::string updated_at;  // "" if never set
};

class ClusterCordons {
 public:
  explicit ClusterCordons(ClusterDatabases& dbs) : dbs_(dbs) {}

  // BadInput for an unknown cluster. Idempotent.
  Status Cordon(const std::string& cluster, const std::string& reason);
  Status Uncordon(const std::string& cluster);
  // false for a cluster never cordoned. Read-only.
  StatusOr<bool> IsCordoned(const std::string& cluster);
  StatusOr<CordonState> Get(const std::string& cluster);
  // Every configured cluster.
  StatusOr<std::map<std::string, CordonState>> All();

 private:
  Status Set(const std::string& cluster, bool cordoned, const std::string& reason);
  ClusterDatabases& dbs_;
};

}  // namespace headshift::migrate
