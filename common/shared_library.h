// SharedLibrary: a shared library loaded on first use (dlopen) instead of at process start.
//
// Why: libpq and libcurl bring ~30 more shared libraries with them (Kerberos, LDAP, SASL, GnuTLS,
// nghttp2, ...). Mapping and relocating them is most of headshift's start-up: 21 ms against 8.5 ms
// for the same binary without them (measured: a minimal program linked with and without -lpq
// -lcurl, 30 runs each, on the development VM). Commands that never reach a database or an HTTP
// API (`sessions kill`, `route`, `--help`) should not pay that; the ones that do pay it once, at
// their first connection.
//
// Contract: Load() is idempotent and thread-safe; a library stays loaded for the life of the
// process. Symbol() returns nullptr for a missing symbol.
#pragma once

#include <string>

#include "common/status.h"

namespace headshift {

class SharedLibrary {
 public:
  // Loads `soname` (e.g. "libpq.so.5"), once per process. Failed naming the library, the loader's
  // reason and the Debian `package` that provides it.
  static StatusOr<SharedLibrary*> Load(const std::string& soname, const std::string& package);

  void* Symbol(const char* name) const;
  const std::string& soname() const { return soname_; }

 private:
  SharedLibrary(std::string soname, void* handle) : soname_(std::move(soname)), handle_(handle) {}
  std::string soname_;
  void* handle_;
};

// libpq (libpq.so.5), loaded on first use. Every libpq function headshift calls is defined in
// common/libpq_stubs.cc with libpq's exact signature (the compiler checks it against libpq-fe.h)
// and forwards to the loaded library. Call LoadLibpq() before the first libpq call to get an
// error instead: a stub that cannot load libpq prints the reason and ends the process (exit 1).
Status LoadLibpq();

}  // namespace headshift
