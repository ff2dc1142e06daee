// SessionTerminator: resets a selection of TCP sockets in one namespace through a SockDiag, in
// rounds — dump (kernel pre-filter), exact userspace check, pipelined SOCK_DESTROY of everything
// selected, dump again — until a dump selects nothing or max_rounds destroy rounds have run.
//
// The first round resets while its dump is still being read (DestroyPipeline: the walk of the
// kernel's hash on one core, resets on the others), or, paced (resets_per_second), in waves after it. Destroying during a walk can make that walk
// skip a socket, so every later round first reads its dump to the end with nothing being destroyed
// and only then resets; the final, confirming dump is therefore complete. It also catches
// connections that completed their handshake meanwhile (a request socket's cookie is not the
// established socket's).
//
// A SocketQuery describes a selection independently of how it was made: the dumps to run and the
// exact predicate. SessionSelector and SessionSnapshot each produce one.
//
// Thread-safety: not thread-safe (it drives one SockDiag).
#pragma once

#include <functional>
#include <memory>
#include <vector>

#include "common/status.h"
#include "dataplane/session_selector.h"
#include "dataplane/destroy_pipeline.h"
#include "dataplane/session_snapshot.h"
#include "dataplane/sock_diag.h"
#include "dataplane/termination_report.h"

namespace headshift {

struct SocketQuery {
  std::vector<SockDiag::DumpRequest> dumps;
  std::function<bool(const DiagSocket&)> selects;  // exact check; never true for LISTEN

  // Both families (an IPv4 client may sit on an AF_INET6 dual-stack socket), the selector's states
  // and its kernel pre-filter; a family no client can appear in is not dumped.
  static SocketQuery ForSelector(const SessionSelector& selector);
  // The snapshot's sockets that still exist: same cookie and same connection.
  static SocketQuery ForSnapshot(const SessionSnapshot& snapshot);
};

struct TerminatorOptions {
  int max_rounds = 3;  // destroy rounds; one more dump confirms the result
  // Pacing of the first round: at most this many resets per second (0 = all at once). Every reset
  // client reconnects at once otherwise, and the reconnect storm queues on the proxy and the target
  // control plane: each device's interruption is then the queue, not its own reconnect. Paced,
  // the first round resets in waves every kPacingTickMs, after its dump was read to the end; later
  // rounds retry only sockets of that first selection (the clients of early waves have reconnected
  // by then and are spared) and are not paced.
  int64_t resets_per_second = 0;
  static constexpr int kPacingTickMs = 10;
  // Threads that reset (each with its own destroy channel); the default is one per CPU, up to 4.
  size_t destroy_threads = DefaultDestroyThreads();

  static size_t DefaultDestroyThreads();
};

class SessionTerminator {
 public:
  // REQUIRES: diag outlives the terminator.
  explicit SessionTerminator(SockDiag* diag, TerminatorOptions options = {}) : diag_(diag), options_(options) {}

  // The selected sockets, nothing changed.
  StatusOr<std::vector<DiagSocket>> Select(const SocketQuery& query);

  // Lists (outcome listed), or with dry_run reports what would be reset, or resets the selection.
  // NoPrivilege when the kernel refuses every destroy for lack of privilege/support (nothing was
  // reset then); per-socket failures are counted, not returned.
  StatusOr<TerminationReport> Run(const SocketQuery& query, SessionOutcome mode);

 private:
  StatusOr<std::vector<DiagSocket>> SelectTimed(const SocketQuery& query, double* ms);
  // Feeds `selected` to `pipe` in waves of resets_per_second * kPacingTickMs / 1000 sockets, one wave
  // per tick, each destroyed before the next starts.
  // *waves counts the waves sent.
  StatusOr<std::vector<DestroyPipeline::Answer>> DestroyPaced(const std::vector<DiagSocket>& selected, int* waves);

  SockDiag* diag_;
  TerminatorOptions options_;
};

}  // namespace headshift
