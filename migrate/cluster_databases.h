// ClusterDatabases: the PostgreSQL connections of a headshift.yaml. In the shared layout every cluster's
// rows live in one database (database.dsn); in the split layout each cluster has its own
// (clusters[].dsn). It also says where the journal lives (journal.location: the shared database, or the
// target cluster's database).
//
// All DSNs are resolved (env/file, password registered for redaction) by Open(), so a missing secret is
// refused before anything connects or writes. Connections are opened lazily, put in a deterministic
// session state (UTC, ISO dates, hex bytea: the row hashes depend on text output), cached per database,
// and reopened when the server dropped them.
//
// Thread-safety: not thread-safe; one ClusterDatabases per thread (Dedicated() connections may be handed
// to other threads).
#pragma once

#include <future>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/config.h"
#include "common/pg.h"
#include "common/status.h"

namespace headshift::migrate {

class ClusterDatabases {
 public:
  // BadInput when a DSN cannot be resolved or the config has no clusters.
  static StatusOr<std::unique_ptr<ClusterDatabases>> Open(const Config& config);

  DbLayout layout() const { return layout_; }
  bool shared() const { return layout_ == DbLayout::kShared; }
  const std::vector<std::string>& cluster_ids() const { return cluster_ids_; }
  bool Knows(const std::string& cluster) const;
  // BadInput naming the known clusters when `cluster` is not configured.
  Status CheckKnown(const std::string& cluster, const std::string& role) const;
  int64_t connect_timeout_ms() const { return connect_timeout_ms_; }

  // The cached connection to the database holding `cluster`'s rows (shared: the one database).
  StatusOr<PgConn*> Conn(const std::string& cluster);
  // Every connection opened here waits at most timeouts.db_lock_ms for a lock and runs a statement for at
  // most timeouts.db_statement_ms (PostgreSQL lock_timeout / statement_timeout); TCP keepalives detect a
  // dead peer (common/pg.h). A wait that runs out fails the step naming the timeout to raise.
  // A new connection of its own to `cluster`'s database (caller owns it): COPY streams, locks.
  StatusOr<std::unique_ptr<PgConn>> Dedicated(const std::string& cluster);
  // Opens (in parallel, one thread per database) the cached connections of `clusters` that are not open
  // yet: a step touching two databases waits for one connection set-up, not two.
  Status ConnectAll(const std::vector<std::string>& clusters);
  // Starts opening a dedicated connection on another thread (collect with .get()).
  std::future<StatusOr<std::unique_ptr<PgConn>>> DedicatedAsync(const std::string& cluster);
  // Whether two clusters' rows live in the same database.
  bool SameDatabase(const std::string& a, const std::string& b) const;
  // A stable name of the database holding `cluster` ("shared" or "cluster:<id>"), for messages/dedup.
  std::string DatabaseKey(const std::string& cluster) const;

  // The database holding the journal of a migration to `to_cluster`.
  StatusOr<PgConn*> JournalConn(const std::string& to_cluster);
  StatusOr<std::unique_ptr<PgConn>> DedicatedJournal(const std::string& to_cluster);
  // Every distinct journal database (shared: one; target location: one per cluster), as cluster ids
  // to pass to JournalConn ("" = the shared journal database).
  std::vector<std::string> JournalHomes() const;
  bool journal_in_target() const { return journal_target_; }

  // Sets the deterministic session state on a connection headshift opened itself.
  static Status PrepareSession(PgConn& conn);

 private:
  ClusterDatabases() = default;
  StatusOr<PgConn*> CachedConn(const std::string& key, const std::string& dsn);
  // Thread-safe (reads only immutable members).
  StatusOr<std::unique_ptr<PgConn>> NewConn(const std::string& dsn) const;
  std::string JournalKey(const std::string& to_cluster) const;
  std::string JournalDsn(const std::string& to_cluster) const;

  DbLayout layout_ = DbLayout::kShared;
  bool journal_target_ = false;
  int64_t connect_timeout_ms_ = 5000;
  int64_t lock_timeout_ms_ = 10000;       // timeouts.db_lock_ms
  int64_t statement_timeout_ms_ = 900000;  // timeouts.db_statement_ms
  std::string shared_dsn_;                       // database.dsn ("" in split without one)
  std::map<std::string, std::string> cluster_dsn_;  // split: per cluster
  std::vector<std::string> cluster_ids_;
  std::map<std::string, std::unique_ptr<PgConn>> conns_;  // by database key
};

}  // namespace headshift::migrate
