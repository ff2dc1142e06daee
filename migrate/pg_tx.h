// PgTx: a transaction scope on a PgConn. Begins in the constructor (Begin()), rolls back in the
// destructor unless Commit() succeeded, so every early return of a step leaves nothing half-written.
//
// Thread-safety: same as the connection.
#pragma once

#include <string>

#include "common/pg.h"
#include "common/status.h"

namespace headshift::migrate {

class PgTx {
 public:
  explicit PgTx(PgConn& conn) : conn_(conn) {}
  ~PgTx() { Rollback(); }
  PgTx(const PgTx&) = delete;
  PgTx& operator=(const PgTx&) = delete;

  // `begin` e.g. "BEGIN" or "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY".
  Status Begin(const std::string& begin = "BEGIN") {
    Status st = conn_.ExecScript(begin);
    open_ = st.ok();
    return st;
  }
  Status Commit() {
    if (!open_) return Status::Failed("no open transaction to commit");
    // COMMIT of a failed transaction silently rolls back: refuse it explicitly.
    if (PQtransactionStatus(conn_.raw()) != PQTRANS_INTRANS) {
      Rollback();
      return Status::Failed("the transaction failed or the connection was lost before commit; nothing was committed");
    }
    open_ = false;
    Status st = conn_.ExecScript("COMMIT");
    if (!st.ok()) return st.WithContext("commit");
    return Status::Ok();
  }
  void Rollback() {
    if (open_ && conn_.Healthy()) (void)conn_.ExecScript("ROLLBACK");
    open_ = false;
  }
  bool open() const { return open_; }

 private:
  PgConn& conn_;
  bool open_ = false;
};

}  // namespace headshift::migrate
