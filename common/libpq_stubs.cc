// libpq's functions as headshift calls them, forwarding to libpq.so.5 loaded on first use (see
// common/shared_library.h for why). Each definition repeats libpq-fe.h's declaration, so a
// signature that drifts from the installed header fails to compile. Add a line here when code
// starts calling another libpq function (the link fails until then).
#include <libpq-fe.h>

#include <cstdio>
#include <cstdlib>

#include "common/shared_library.h"

namespace headshift {

Status LoadLibpq() {
  auto lib = SharedLibrary::Load("libpq.so.5", "libpq5");
  return lib.ok() ? Status::Ok() : lib.status();
}

namespace {

[[noreturn]] void Die(const std::string& message, const std::string& hint) {
  std::fprintf(stderr, "headshift: error: %s\nheadshift: fix: %s\n", message.c_str(), hint.c_str());
  std::_Exit(1);
}

template <typename Fn>
Fn LibpqFunction(const char* name) {
  auto lib = SharedLibrary::Load("libpq.so.5", "libpq5");
  if (!lib.ok()) Die(lib.status().message(), lib.status().hint());
  void* sym = (*lib)->Symbol(name);
  if (!sym) Die(std::string("libpq.so.5 has no ") + name, "install a libpq5 of PostgreSQL 12 or newer");
  return reinterpret_cast<Fn>(sym);
}

}  // namespace
}  // namespace headshift

#define HS_LIBPQ(ret, name, params, args)                                                  \
  extern "C" ret name params {                                                             \
    static const auto fn = headshift::LibpqFunction<ret(*) params>(#name);                \
    return fn args;                                                                        \
  }

HS_LIBPQ(PGconn*, PQconnectdbParams, (const char* const* keywords, const char* const* values, int expand_dbname),
         (keywords, values, expand_dbname))
HS_LIBPQ(void, PQfinish, (PGconn * conn), (conn))
HS_LIBPQ(ConnStatusType, PQstatus, (const PGconn* conn), (conn))
HS_LIBPQ(PGTransactionStatusType, PQtransactionStatus, (const PGconn* conn), (conn))
HS_LIBPQ(char*, PQerrorMessage, (const PGconn* conn), (conn))
HS_LIBPQ(int, PQbackendPID, (const PGconn* conn), (conn))
HS_LIBPQ(PQnoticeProcessor, PQsetNoticeProcessor, (PGconn * conn, PQnoticeProcessor proc, void* arg),
         (conn, proc, arg))
HS_LIBPQ(PGresult*, PQexec, (PGconn * conn, const char* query), (conn, query))
HS_LIBPQ(PGresult*, PQexecParams,
         (PGconn * conn, const char* command, int nParams, const Oid* paramTypes, const char* const* paramValues,
          const int* paramLengths, const int* paramFormats, int resultFormat),
         (conn, command, nParams, paramTypes, paramValues, paramLengths, paramFormats, resultFormat))
HS_LIBPQ(int, PQsendQuery, (PGconn * conn, const char* query), (conn, query))
HS_LIBPQ(PGresult*, PQgetResult, (PGconn * conn), (conn))
HS_LIBPQ(ExecStatusType, PQresultStatus, (const PGresult* res), (res))
HS_LIBPQ(char*, PQresultErrorMessage, (const PGresult* res), (res))
HS_LIBPQ(char*, PQresultErrorField, (const PGresult* res, int fieldcode), (res, fieldcode))
HS_LIBPQ(void, PQclear, (PGresult * res), (res))
HS_LIBPQ(char*, PQcmdTuples, (PGresult * res), (res))
HS_LIBPQ(int, PQntuples, (const PGresult* res), (res))
HS_LIBPQ(int, PQnfields, (const PGresult* res), (res))
HS_LIBPQ(int, PQfnumber, (const PGresult* res, const char* field_name), (res, field_name))
HS_LIBPQ(char*, PQgetvalue, (const PGresult* res, int tup_num, int field_num), (res, tup_num, field_num))
HS_LIBPQ(int, PQgetisnull, (const PGresult* res, int tup_num, int field_num), (res, tup_num, field_num))
HS_LIBPQ(int, PQputCopyData, (PGconn * conn, const char* buffer, int nbytes), (conn, buffer, nbytes))
HS_LIBPQ(int, PQputCopyEnd, (PGconn * conn, const char* errormsg), (conn, errormsg))
HS_LIBPQ(int, PQgetCopyData, (PGconn * conn, char** buffer, int async), (conn, buffer, async))
HS_LIBPQ(void, PQfreemem, (void* ptr), (ptr))
HS_LIBPQ(char*, PQescapeLiteral, (PGconn * conn, const char* str, size_t len), (conn, str, len))
HS_LIBPQ(char*, PQescapeIdentifier, (PGconn * conn, const char* str, size_t len), (conn, str, len))
HS_LIBPQ(PQconninfoOption*, PQconninfoParse, (const char* conninfo, char** errmsg), (conninfo, errmsg))
HS_LIBPQ(void, PQconninfoFree, (PQconninfoOption * connOptions), (connOptions))
HS_LIBPQ(PGcancel*, PQgetCancel, (PGconn * conn), (conn))
HS_LIBPQ(void, PQfreeCancel, (PGcancel * cancel), (cancel))
HS_LIBPQ(int, PQcancel, (PGcancel * cancel, char* errbuf, int errbufsize), (cancel, errbuf, errbufsize))
