// Small RAII wrappers over libpq (no ORM): PgConn owns a PGconn, PgResult owns a PGresult.
// Errors come back as Status with the DSN's password redacted.
//
// Thread-safety: a PgConn is used by one thread at a time (libpq's rule).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <libpq-fe.h>

#include "common/status.h"

namespace headshift {

class PgResult {
 public:
  PgResult() = default;
  explicit PgResult(PGresult* r) : r_(r, &PQclear) {}
  PGresult* get() const { return r_.get(); }
  int rows() const { return r_ ? PQntuples(r_.get()) : 0; }
  int cols() const { return r_ ? PQnfields(r_.get()) : 0; }
  bool IsNull(int row, int col) const { return PQgetisnull(r_.get(), row, col); }
  std::string Get(int row, int col) const { return PQgetvalue(r_.get(), row, col); }
  std::string Get(int row, const char* col) const;
  int64_t GetInt(int row, int col) const { return std::stoll(Get(row, col)); }
  int Col(const char* name) const { return PQfnumber(r_.get(), name); }

 private:
  std::shared_ptr<PGresult> r_;
};

class PgConn {
 public:
  // Connects with `dsn`; `connect_timeout_ms` bounds the connect. The DSN's password is registered
  // for redaction before anything can log it.
  static StatusOr<std::unique_ptr<PgConn>> Connect(const std::string& dsn, int64_t connect_timeout_ms = 5000);

  ~PgConn();
  PgConn(const PgConn&) = delete;
  PgConn& operator=(const PgConn&) = delete;

  // Runs a statement with text parameters ($1, $2, ...). A NULL parameter is std::nullopt-free:
  // pass `nulls` with true at the index to send SQL NULL.
  StatusOr<PgResult> Exec(const std::string& sql, const std::vector<std::string>& params = {},
                          const std::vector<bool>& nulls = {});
  // Runs one or more statements without parameters (simple query protocol).
  Status ExecScript(const std::string& sql);

  PGconn* raw() { return conn_; }
  // Quotes an identifier / literal with libpq's escaping.
  std::string QuoteIdent(const std::string& ident);
  std::string QuoteLiteral(const std::string& lit);
  bool Healthy() const { return PQstatus(conn_) == CONNECTION_OK; }
  std::string LastError() const;

 private:
  explicit PgConn(PGconn* c) : conn_(c) {}
  PGconn* conn_;
};

}  // namespace headshift
