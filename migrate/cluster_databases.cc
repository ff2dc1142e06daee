#include "migrate/cluster_databases.h"

namespace headshift::migrate {

StatusOr<std::unique_ptr<ClusterDatabases>> ClusterDatabases::Open(const Config& config) {
  std::unique_ptr<ClusterDatabases> d(new ClusterDatabases());
  d->layout_ = config.database.layout;
  d->connect_timeout_ms_ = config.timeouts.db_connect_ms;
  d->lock_timeout_ms_ = config.timeouts.db_lock_ms;
  d->statement_timeout_ms_ = config.timeouts.db_statement_ms;
  if (config.clusters.empty()) {
    return Status::BadInput("no clusters configured", "add clusters: [{id: ..., ...}] to headshift.yaml");
  }
  for (const auto& c : config.clusters) d->cluster_ids_.push_back(c.id);
  if (!config.database.dsn.empty()) {
    auto dsn = ResolveDsn(config.database.dsn, "database.dsn");
    if (!dsn.ok()) return dsn.status();
    d->shared_dsn_ = *dsn;
  }
  if (d->layout_ == DbLayout::kShared) {
    if (d->shared_dsn_.empty()) {
      return Status::BadInput("database.dsn is required in the shared layout", "set database.dsn_env or dsn_file");
    }
  } else {
    for (const auto& c : config.clusters) {
      if (c.dsn.empty()) {
        return Status::BadInput("clusters[" + c.id + "].dsn is required in the split layout",
                                "set dsn_env or dsn_file on every cluster");
      }
      auto dsn = ResolveDsn(c.dsn, "clusters[" + c.id + "].dsn");
      if (!dsn.ok()) return dsn.status();
      d->cluster_dsn_[c.id] = *dsn;
    }
  }
  d->journal_target_ = config.journal.location == "target" || d->shared_dsn_.empty();
  if (d->layout_ == DbLayout::kShared) d->journal_target_ = false;  // one database: the journal is in it
  return d;
}

bool ClusterDatabases::Knows(const std::string& cluster) const {
  for (const auto& c : cluster_ids_) {
    if (c == cluster) return true;
  }
  return false;
}

Status ClusterDatabases::CheckKnown(const std::string& cluster, const std::string& role) const {
  if (Knows(cluster)) return Status::Ok();
  std::string known;
  for (const auto& c : cluster_ids_) known += (known.empty() ? "" : ", ") + c;
  return Status::BadInput(role + " cluster '" + cluster + "' is not configured (known: " + known + ")",
                          "use one of the ids under clusters: in headshift.yaml");
}

std::string ClusterDatabases::DatabaseKey(const std::string& cluster) const {
  return shared() ? "shared" : "cluster:" + cluster;
}

bool ClusterDatabases::SameDatabase(const std::string& a, const std::string& b) const {
  return DatabaseKey(a) == DatabaseKey(b);
}

Status ClusterDatabases::PrepareSession(PgConn& conn) {
  // Row hashes hash the rows' text: make that text independent of server and role defaults.
  return conn.ExecScript(
      "SET TimeZone = 'UTC'; SET DateStyle = 'ISO, YMD'; SET IntervalStyle = 'postgres'; "
      "SET bytea_output = 'hex'; SET extra_float_digits = 1; SET lc_monetary = 'C'");
}

StatusOr<std::unique_ptr<PgConn>> ClusterDatabases::NewConn(const std::string& dsn) const {
  auto c = PgConn::Connect(dsn, connect_timeout_ms_);
  if (!c.ok()) return c.status();
  Status st = PrepareSession(**c);
  if (st.ok()) {
    // Bounded waits: a long headscale or operator transaction holding the tenant's rows makes a step
    // fail (and roll back, or stop for `resume`) instead of hanging with the tenant lock held.
    st = (*c)->ExecScript("SET lock_timeout = '" + std::to_string(lock_timeout_ms_) + "ms'; SET statement_timeout = '" +
                          std::to_string(statement_timeout_ms_) + "ms'");
  }
  if (!st.ok()) return st.WithContext("preparing the session");
  return std::move(*c);
}

StatusOr<PgConn*> ClusterDatabases::CachedConn(const std::string& key, const std::string& dsn) {
  auto it = conns_.find(key);
  if (it != conns_.end() && it->second->Healthy()) {
    // A connection left inside a failed transaction (a step that returned early) is reset.
    if (PQtransactionStatus(it->second->raw()) != PQTRANS_IDLE) (void)it->second->ExecScript("ROLLBACK");
    if (it->second->Healthy()) return it->second.get();
  }
  auto c = NewConn(dsn);
  if (!c.ok()) return c.status();
  PgConn* raw = c->get();
  conns_[key] = std::move(*c);
  return raw;
}

Status ClusterDatabases::ConnectAll(const std::vector<std::string>& clusters) {
  std::vector<std::pair<std::string, std::string>> todo;  // key, dsn
  for (const auto& c : clusters) {
    HS_RETURN_IF_ERROR(CheckKnown(c, "the"));
    std::string key = DatabaseKey(c);
    auto it = conns_.find(key);
    if (it != conns_.end() && it->second->Healthy()) continue;
    bool dup = false;
    for (const auto& t : todo) dup |= t.first == key;
    if (!dup) todo.push_back({key, shared() ? shared_dsn_ : cluster_dsn_.at(c)});
  }
  std::vector<std::future<StatusOr<std::unique_ptr<PgConn>>>> pending;
  for (const auto& [key, dsn] : todo) {
    pending.push_back(std::async(std::launch::async, [this, dsn = dsn] { return NewConn(dsn); }));
  }
  Status first;
  for (size_t i = 0; i < todo.size(); ++i) {
    auto c = pending[i].get();
    if (!c.ok()) {
      if (first.ok()) first = c.status();
      continue;
    }
    conns_[todo[i].first] = std::move(*c);
  }
  return first;
}

std::future<StatusOr<std::unique_ptr<PgConn>>> ClusterDatabases::DedicatedAsync(const std::string& cluster) {
  Status known = CheckKnown(cluster, "the");
  std::string dsn = known.ok() ? (shared() ? shared_dsn_ : cluster_dsn_.at(cluster)) : "";
  return std::async(std::launch::async, [this, known, dsn]() -> StatusOr<std::unique_ptr<PgConn>> {
    if (!known.ok()) return known;
    return NewConn(dsn);
  });
}

StatusOr<PgConn*> ClusterDatabases::Conn(const std::string& cluster) {
  HS_RETURN_IF_ERROR(CheckKnown(cluster, "the"));
  return CachedConn(DatabaseKey(cluster), shared() ? shared_dsn_ : cluster_dsn_.at(cluster));
}

StatusOr<std::unique_ptr<PgConn>> ClusterDatabases::Dedicated(const std::string& cluster) {
  HS_RETURN_IF_ERROR(CheckKnown(cluster, "the"));
  return NewConn(shared() ? shared_dsn_ : cluster_dsn_.at(cluster));
}

std::string ClusterDatabases::JournalKey(const std::string& to_cluster) const {
  if (!journal_target_) return "shared";
  return DatabaseKey(to_cluster);
}

std::string ClusterDatabases::JournalDsn(const std::string& to_cluster) const {
  if (!journal_target_) return shared_dsn_;
  return shared() ? shared_dsn_ : cluster_dsn_.at(to_cluster);
}

StatusOr<PgConn*> ClusterDatabases::JournalConn(const std::string& to_cluster) {
  if (journal_target_) HS_RETURN_IF_ERROR(CheckKnown(to_cluster, "the"));
  return CachedConn(JournalKey(to_cluster), JournalDsn(to_cluster));
}

StatusOr<std::unique_ptr<PgConn>> ClusterDatabases::DedicatedJournal(const std::string& to_cluster) {
  if (journal_target_) HS_RETURN_IF_ERROR(CheckKnown(to_cluster, "the"));
  return NewConn(JournalDsn(to_cluster));
}

std::vector<std::string> ClusterDatabases::JournalHomes() const {
  if (!journal_target_) return {cluster_ids_.front()};
  return cluster_ids_;
}

}  // namespace headshift::migrate
