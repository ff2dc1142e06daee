#include "migrate/pg_copy.h"

#include <algorithm>

#include "common/redact.h"

namespace headshift::migrate {
namespace {

std::string Trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

// Reads every pending result; returns the first error message ("" if none).
std::string DrainResults(PGconn* c) {
  std::string err;
  while (PGresult* r = PQgetResult(c)) {
    ExecStatusType st = PQresultStatus(r);
    if (st == PGRES_COPY_OUT) {
      // Still in COPY OUT (after a cancel): consume the rest.
      char* buf = nullptr;
      while (PQgetCopyData(c, &buf, 0) > 0) PQfreemem(buf);
    } else if (st == PGRES_COPY_IN) {
      PQputCopyEnd(c, "headshift aborted the copy");
    } else if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK && err.empty()) {
      err = Trim(Redact(PQresultErrorMessage(r)));
    }
    PQclear(r);
    if (PQstatus(c) != CONNECTION_OK) break;
  }
  return err;
}

// Aborts the source side: cancel the running COPY OUT and drain it.
void AbortSource(PGconn* src) {
  if (PQstatus(src) != CONNECTION_OK) return;
  if (PGcancel* cancel = PQgetCancel(src)) {
    char errbuf[256];
    PQcancel(cancel, errbuf, sizeof errbuf);
    PQfreeCancel(cancel);
  }
  char* buf = nullptr;
  int n;
  while ((n = PQgetCopyData(src, &buf, 0)) > 0) PQfreemem(buf);
  DrainResults(src);
}

// Aborts the target side: end the COPY IN with an error so the statement (and its transaction) fails.
void AbortTarget(PGconn* tgt, const char* why) {
  if (PQstatus(tgt) != CONNECTION_OK) return;
  PQputCopyEnd(tgt, why);
  DrainResults(tgt);
}

std::string ConnError(PGconn* c) { return Trim(Redact(PQerrorMessage(c))); }

}  // namespace

StatusOr<CopyStreamResult> StreamCopy(PgConn& source, const std::string& copy_out, PgConn& target,
                                      const std::string& copy_in, const CopyProgressFn& progress,
                                      int64_t every_rows) {
  PGconn* src = source.raw();
  PGconn* tgt = target.raw();
  CopyStreamResult out;
  // Start the target first: if the table is wrong, nothing is read from the source.
  {
    PGresult* r = PQexec(tgt, copy_in.c_str());
    ExecStatusType st = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
    std::string err = r ? Trim(Redact(PQresultErrorMessage(r))) : ConnError(tgt);
    PQclear(r);
    if (st != PGRES_COPY_IN) return Status::Failed("target COPY did not start: " + (err.empty() ? ConnError(tgt) : err));
  }
  {
    PGresult* r = PQexec(src, copy_out.c_str());
    ExecStatusType st = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
    std::string err = r ? Trim(Redact(PQresultErrorMessage(r))) : ConnError(src);
    PQclear(r);
    if (st != PGRES_COPY_OUT) {
      AbortTarget(tgt, "source failed");
      return Status::Failed("source COPY did not start: " + (err.empty() ? ConnError(src) : err));
    }
  }
  int64_t streamed = 0;
  for (;;) {
    char* buf = nullptr;
    int n = PQgetCopyData(src, &buf, 0);
    if (n == -1) break;  // end of data
    if (n == -2) {
      std::string err = ConnError(src);
      AbortTarget(tgt, "source failed");
      DrainResults(src);
      return Status::Failed("reading from the source failed mid-copy: " + err);
    }
    int ok = PQputCopyData(tgt, buf, n);
    PQfreemem(buf);
    if (ok != 1) {
      std::string err = ConnError(tgt);
      AbortSource(src);
      DrainResults(tgt);
      return Status::Failed("writing to the target failed mid-copy: " + err);
    }
    out.bytes += n;
    ++streamed;
    if (progress && every_rows > 0 && streamed % every_rows == 0) {
      Status st = progress(streamed);
      if (!st.ok()) {
        AbortSource(src);
        AbortTarget(tgt, "aborted by headshift");
        return st;
      }
    }
  }
  // Source finished: check it ended well before committing the target's COPY.
  std::string src_err = DrainResults(src);
  if (!src_err.empty() || PQstatus(src) != CONNECTION_OK) {
    AbortTarget(tgt, "source failed");
    return Status::Failed("the source COPY failed: " + (src_err.empty() ? ConnError(src) : src_err));
  }
  if (PQputCopyEnd(tgt, nullptr) != 1) {
    std::string err = ConnError(tgt);
    DrainResults(tgt);
    return Status::Failed("finishing the target COPY failed: " + err);
  }
  std::string tag;
  std::string tgt_err;
  while (PGresult* r = PQgetResult(tgt)) {
    ExecStatusType st = PQresultStatus(r);
    if (st == PGRES_COMMAND_OK) {
      tag = PQcmdTuples(r);
    } else if (tgt_err.empty()) {
      tgt_err = Trim(Redact(PQresultErrorMessage(r)));
    }
    PQclear(r);
    if (PQstatus(tgt) != CONNECTION_OK) break;
  }
  if (!tgt_err.empty() || PQstatus(tgt) != CONNECTION_OK) {
    return Status::Failed("the target COPY failed: " + (tgt_err.empty() ? ConnError(tgt) : tgt_err));
  }
  out.rows = tag.empty() ? 0 : std::stoll(tag);
  return out;
}

StatusOr<std::string> CopyOutToBuffer(PgConn& conn, const std::string& copy_out) {
  PGconn* c = conn.raw();
  PGresult* r = PQexec(c, copy_out.c_str());
  ExecStatusType st = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
  std::string err = r ? Trim(Redact(PQresultErrorMessage(r))) : ConnError(c);
  PQclear(r);
  if (st != PGRES_COPY_OUT) return Status::Failed("COPY did not start: " + (err.empty() ? ConnError(c) : err));
  std::string out;
  for (;;) {
    char* buf = nullptr;
    int n = PQgetCopyData(c, &buf, 0);
    if (n == -1) break;
    if (n == -2) {
      std::string e = ConnError(c);
      DrainResults(c);
      return Status::Failed("COPY failed: " + e);
    }
    out.append(buf, n);
    PQfreemem(buf);
  }
  std::string e = DrainResults(c);
  if (!e.empty() || PQstatus(c) != CONNECTION_OK) return Status::Failed("COPY failed: " + (e.empty() ? ConnError(c) : e));
  return out;
}

StatusOr<int64_t> CopyInFromBuffer(PgConn& conn, const std::string& copy_in, const std::string& data) {
  PGconn* c = conn.raw();
  PGresult* r = PQexec(c, copy_in.c_str());
  ExecStatusType st = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
  std::string err = r ? Trim(Redact(PQresultErrorMessage(r))) : ConnError(c);
  PQclear(r);
  if (st != PGRES_COPY_IN) return Status::Failed("COPY did not start: " + (err.empty() ? ConnError(c) : err));
  constexpr size_t kChunk = 256 * 1024;
  for (size_t off = 0; off < data.size(); off += kChunk) {
    size_t n = std::min(kChunk, data.size() - off);
    if (PQputCopyData(c, data.data() + off, static_cast<int>(n)) != 1) {
      std::string e = ConnError(c);
      DrainResults(c);
      return Status::Failed("COPY failed: " + e);
    }
  }
  if (PQputCopyEnd(c, nullptr) != 1) {
    std::string e = ConnError(c);
    DrainResults(c);
    return Status::Failed("COPY failed: " + e);
  }
  std::string tag, e;
  while (PGresult* res = PQgetResult(c)) {
    if (PQresultStatus(res) == PGRES_COMMAND_OK) tag = PQcmdTuples(res);
    else if (e.empty()) e = Trim(Redact(PQresultErrorMessage(res)));
    PQclear(res);
    if (PQstatus(c) != CONNECTION_OK) break;
  }
  if (!e.empty() || PQstatus(c) != CONNECTION_OK) return Status::Failed("COPY failed: " + (e.empty() ? ConnError(c) : e));
  return tag.empty() ? int64_t{0} : static_cast<int64_t>(std::stoll(tag));
}

Status SendQuery(PgConn& conn, const std::string& sql) {
  if (PQsendQuery(conn.raw(), sql.c_str()) != 1) return Status::Failed("SQL failed: " + ConnError(conn.raw()));
  return Status::Ok();
}

StatusOr<PgResult> AwaitResult(PgConn& conn) {
  PgResult last;
  std::string err;
  while (PGresult* r = PQgetResult(conn.raw())) {
    ExecStatusType st = PQresultStatus(r);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK && err.empty()) err = Trim(Redact(PQresultErrorMessage(r)));
    last = PgResult(r);
  }
  if (!err.empty()) return Status::Failed("SQL failed: " + err);
  if (!last.get()) return Status::Failed("SQL failed: " + ConnError(conn.raw()));
  return last;
}

}  // namespace headshift::migrate
