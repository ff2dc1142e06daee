// COPY protocol helpers over libpq: stream `COPY (SELECT ...) TO STDOUT` from one connection straight
// into `COPY table (...) FROM STDIN` on another — no temp files, no client-side parsing, one round trip
// per table. Also a helper to run two queries on two connections at the same time.
//
// Thread-safety: each function uses the connections it is given from the calling thread only.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "common/pg.h"
#include "common/status.h"

namespace headshift::migrate {

struct CopyStreamResult {
  int64_t rows = 0;   // rows the target accepted (its COPY command tag)
  int64_t bytes = 0;  // payload bytes streamed
};

// Called every `every_rows` streamed rows (when > 0) with the rows streamed so far. A non-OK result
// aborts the stream: the target COPY fails (so its transaction can only roll back).
using CopyProgressFn = std::function<Status(int64_t rows_streamed)>;

// REQUIRES: `copy_out` is a COPY ... TO STDOUT statement valid on `source`, `copy_in` a COPY ... FROM
// STDIN statement on `target` with the same format and column count; `target` is inside a
// transaction if the caller wants all-or-nothing. On any failure (either side, or a dropped
// connection) the target COPY is aborted and the source COPY cancelled and drained, so both
// connections are left usable (or dead) but never mid-COPY.
StatusOr<CopyStreamResult> StreamCopy(PgConn& source, const std::string& copy_out, PgConn& target,
                                      const std::string& copy_in, const CopyProgressFn& progress = {},
                                      int64_t every_rows = 0);

// Runs `copy_out` (COPY ... TO STDOUT) and returns the whole stream (small streams only: it is held in
// memory). Used to compute on one connection what another one will load.
StatusOr<std::string> CopyOutToBuffer(PgConn& conn, const std::string& copy_out);
// Runs `copy_in` (COPY ... FROM STDIN) feeding it `data`; returns the rows loaded.
StatusOr<int64_t> CopyInFromBuffer(PgConn& conn, const std::string& copy_in, const std::string& data);

// Sends `sql` on `conn` without waiting (PQsendQuery); collect it with AwaitResult. Lets headshift
// compute the source and target sides of a checksum at the same time.
Status SendQuery(PgConn& conn, const std::string& sql);
// Waits for the query sent by SendQuery and returns its (last) result.
StatusOr<PgResult> AwaitResult(PgConn& conn);

}  // namespace headshift::migrate
