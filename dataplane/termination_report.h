// TerminationReport: what a session listing or kill found and did on one session host — counts per
// outcome and every socket involved — and its JSON form (the `sessions list|kill --json` contract:
// selected, reset, gone, failed, sockets[{family, local, remote, state, cookie}]).
//
// Counts: selected = distinct sockets (by cookie) the selection matched in any round; reset = the
// kernel took the destroy (no failure answered; or its answer was lost and the confirming dump no
// longer shows the socket); gone = closed before it could be reset (ENOENT/ESTALE: the socket,
// identified by its cookie, no longer exists); failed = any other error; remaining = still selected
// after the last round (new connections kept arriving, or destroys did not take).
//
// Thread-safety: a value.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "dataplane/diag_socket.h"

namespace headshift {

enum class SessionOutcome {
  kListed,      // read-only listing / snapshot
  kWouldReset,  // dry run
  kReset,
  kGone,
  kFailed,
  kRemaining,
};
const char* SessionOutcomeName(SessionOutcome o);

struct SessionRecord {
  DiagSocket socket;
  SessionOutcome outcome = SessionOutcome::kListed;
  int error = 0;  // errno for kFailed (and kGone: ENOENT or ESTALE)

  // Records the kernel's answer to a SOCK_DESTROY of this socket (SockDiag::Destroy's errno).
  // 0 → reset. ENOENT/ESTALE → gone, unless an earlier round already reset it (a walk can report a
  // socket twice when its bucket changes between two reads). SockDiag::kAnswerLost → reset for now:
  // the outcome is unknown, and the caller's confirming dump decides — a socket it still shows is
  // destroyed again (or reported remaining), one it no longer shows is gone from the host, which is
  // what a reset asked for; counting it failed would fail a kill that left nothing behind.
  // Any other errno → failed.
  void ApplyDestroyAnswer(int err);
};

struct TerminationReport {
  std::string host;   // session host name (may be empty)
  std::string netns;  // the namespace as given ("" = headshift's own)
  bool dry_run = false;
  int rounds = 0;     // dump rounds run
  int waves = 0;      // paced destroy waves of the first round (0: not paced)
  size_t nat_flows = 0;  // connections resolved through conntrack (0 without NAT resolution)
  size_t selected = 0, reset = 0, gone = 0, failed = 0, remaining = 0;
  std::vector<SessionRecord> sockets;
  double dump_ms = 0, destroy_ms = 0, total_ms = 0;

  // Recomputes the counts from `sockets`.
  void Recount();
  // Adds another host's report (counts and sockets) into this one.
  void Merge(const TerminationReport& other);

  // Counts, timings, host and netns; the sockets are written by AppendSocketsJsonArray.
  nlohmann::json ToJson() const;
  std::string ToText() const;
  // Appends ToText() to `out`.
  void AppendText(std::string& out) const;
};

// One socket as JSON: {family, local, remote, state, cookie}.
nlohmann::json SocketToJson(const DiagSocket& s);

// Appends to `out` a JSON array of every socket of `reports`, each as SocketToJson() plus its
// outcome and host: {family, local, remote, state, cookie, outcome[, error (strerror)], host}. Written by a
// streaming writer (RapidJSON) into storage reserved up front: a 10,000-socket kill lists 1.4 MB,
// and building it as a document tree first cost more than the kill's resets.
void AppendSocketsJsonArray(const std::vector<const TerminationReport*>& reports, std::string& out);

}  // namespace headshift
