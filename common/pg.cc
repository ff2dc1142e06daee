#include "common/pg.h"

#include <spdlog/spdlog.h>

#include "common/redact.h"
#include "common/shared_library.h"

namespace headshift {

std::string PgResult::Get(int row, const char* col) const {
  int c = PQfnumber(r_.get(), col);
  if (c < 0) return {};
  return PQgetvalue(r_.get(), row, c);
}

StatusOr<std::unique_ptr<PgConn>> PgConn::Connect(const std::string& dsn, int64_t connect_timeout_ms) {
  HS_RETURN_IF_ERROR(LoadLibpq());
  RegisterDsnSecrets(dsn);
  // libpq's connect_timeout is in whole seconds, minimum 2 (libpq treats 1 as 2).
  int64_t secs = std::max<int64_t>(2, (connect_timeout_ms + 999) / 1000);
  // TCP keepalives (ignored on unix sockets) so a half-open connection (a network partition mid-cut)
  // fails within about a minute instead of blocking a read forever. Listed before dbname, so a DSN's
  // own keepalive settings win; connect_timeout and application_name after it are ours.
  const char* keys[] = {"keepalives", "keepalives_idle", "keepalives_interval", "keepalives_count",
                        "tcp_user_timeout", "dbname", "connect_timeout", "application_name", nullptr};
  std::string timeout = std::to_string(secs);
  const char* vals[] = {"1", "30", "10", "3", "60000", dsn.c_str(), timeout.c_str(), "headshift", nullptr};
  PGconn* c = PQconnectdbParams(keys, vals, /*expand_dbname=*/1);
  if (!c) return Status::Failed("out of memory creating a PostgreSQL connection");
  if (PQstatus(c) != CONNECTION_OK) {
    std::string err = Redact(PQerrorMessage(c));
    while (!err.empty() && (err.back() == '\n' || err.back() == ' ')) err.pop_back();
    PQfinish(c);
    return Status::Failed("cannot connect to PostgreSQL: " + err,
                          "check the DSN (host, port, dbname, user) and that the server is running");
  }
  // Server notices (e.g. "database does not exist, skipping") go to the debug log, not stderr.
  PQsetNoticeProcessor(
      c, [](void*, const char* msg) { spdlog::debug("postgres: {}", Redact(msg)); }, nullptr);
  return std::unique_ptr<PgConn>(new PgConn(c));
}

PgConn::~PgConn() { PQfinish(conn_); }

std::string PgConn::LastError() const {
  std::string err = Redact(PQerrorMessage(conn_));
  while (!err.empty() && (err.back() == '\n' || err.back() == ' ')) err.pop_back();
  return err;
}

namespace {

// What to do about a statement PostgreSQL cancelled because a wait ran out (SQLSTATE 55P03 lock_not_available
// from lock_timeout, 57014 query_canceled from statement_timeout); "" for other errors.
std::string WaitHint(const PGresult* r) {
  const char* code = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : nullptr;
  if (!code) return "";
  std::string c = code;
  if (c == "55P03") {
    return "another transaction held a lock on these rows longer than timeouts.db_lock_ms: find it in "
           "pg_locks/pg_stat_activity, let it finish, then run the step again (or raise timeouts.db_lock_ms)";
  }
  if (c == "57014") {
    return "the statement ran longer than timeouts.db_statement_ms (or was cancelled by an operator): raise "
           "timeouts.db_statement_ms if the database is just slow, then run the step again";
  }
  return "";
}

}  // namespace

StatusOr<PgResult> PgConn::Exec(const std::string& sql, const std::vector<std::string>& params,
                                const std::vector<bool>& nulls) {
  std::vector<const char*> values;
  values.reserve(params.size());
  for (size_t i = 0; i < params.size(); ++i) {
    values.push_back(i < nulls.size() && nulls[i] ? nullptr : params[i].c_str());
  }
  PgResult r(PQexecParams(conn_, sql.c_str(), static_cast<int>(params.size()), nullptr, values.data(), nullptr,
                          nullptr, 0));
  ExecStatusType st = r.get() ? PQresultStatus(r.get()) : PGRES_FATAL_ERROR;
  if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK && st != PGRES_COPY_IN && st != PGRES_COPY_OUT) {
    std::string err = r.get() ? Redact(PQresultErrorMessage(r.get())) : LastError();
    while (!err.empty() && (err.back() == '\n' || err.back() == ' ')) err.pop_back();
    return Status::Failed("SQL failed: " + err, WaitHint(r.get()));
  }
  return r;
}

Status PgConn::ExecScript(const std::string& sql) {
  PGresult* res = PQexec(conn_, sql.c_str());
  PgResult r(res);
  ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
  if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
    std::string err = res ? Redact(PQresultErrorMessage(res)) : LastError();
    while (!err.empty() && (err.back() == '\n' || err.back() == ' ')) err.pop_back();
    return Status::Failed("SQL failed: " + err, WaitHint(res));
  }
  return Status::Ok();
}

std::string PgConn::QuoteIdent(const std::string& ident) {
  char* q = PQescapeIdentifier(conn_, ident.c_str(), ident.size());
  std::string out = q ? q : "\"\"";
  PQfreemem(q);
  return out;
}

std::string PgConn::QuoteLiteral(const std::string& lit) {
  char* q = PQescapeLiteral(conn_, lit.c_str(), lit.size());
  std::string out = q ? q : "''";
  PQfreemem(q);
  return out;
}

}  // namespace headshift
