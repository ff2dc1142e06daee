// The dataplane's session API: list, snapshot and reset one tenant's TCP sessions on the proxy's
// session hosts. This is what `headshift sessions` and the migration playbooks call.
//
//   SessionHost     where the proxy's client connections live: a namespace, the proxy's ports and,
//                   behind source NAT, the namespace whose conntrack maps clients to NAT tuples.
//   SessionTable    one opened host. Open() validates everything a kill needs before anything is
//                   touched — namespaces exist and are network namespaces, and for kills
//                   CAP_NET_ADMIN and kernel SOCK_DESTROY support — so bad input or a missing
//                   privilege fails with nothing reset.
//   free functions  the one-call forms for orchestration (open, act, close).
//
// NAT: with conntrack_netns set, client CIDRs are resolved into the exact connections the proxy
// sees (ConntrackResolver) and only those are selected; the CIDRs are *not* also matched against
// the proxy's peers, because there they would only ever see NAT addresses (and could match one).
//
// Thread-safety: a SessionTable is used from one thread at a time. The free functions are
// thread-safe (each opens its own).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/config.h"
#include "common/status.h"
#include "dataplane/cidr.h"
#include "dataplane/conntrack_resolver.h"
#include "dataplane/netns.h"
#include "dataplane/session_selector.h"
#include "dataplane/session_snapshot.h"
#include "dataplane/session_terminator.h"
#include "dataplane/sock_diag.h"
#include "dataplane/termination_report.h"

namespace headshift {

struct SessionHost {
  std::string name;             // label in reports
  std::string netns;            // "" = headshift's own netns; a name under /run/netns; or a path
  std::string conntrack_netns;  // "" = no NAT resolution
  std::vector<uint16_t> ports;  // the proxy's listen ports

  static SessionHost FromConfig(const SessionHostConfig& c) { return {c.name, c.netns, c.conntrack_netns, c.ports}; }
};

class SessionTable {
 public:
  enum class Access { kReadOnly, kDestroy };

  // Opens the host's namespace(s) and sock_diag sockets. BadInput for a missing namespace or a
  // host without ports; with kDestroy, NoPrivilege without CAP_NET_ADMIN or kernel support.
  static StatusOr<std::unique_ptr<SessionTable>> Open(const SessionHost& host, Access access,
                                                      TerminatorOptions options = {});

  const SessionHost& host() const { return host_; }
  const Netns& netns() const { return netns_; }

  // Fills empty selector ports from the host and, behind NAT, resolves clients into flows.
  // BadInput when the result is not a valid selection (for_kill: no "every client").
  StatusOr<SessionSelector> Resolve(const SessionSelector& selector, bool for_kill, size_t* nat_flows = nullptr);

  // Read-only listing (outcome "listed").
  StatusOr<TerminationReport> List(const SessionSelector& selector);
  // Records the selection (tuples + cookies + time); nothing is touched.
  StatusOr<SessionSnapshot> Snapshot(const SessionSelector& selector);
  // Resets the selection (dry_run: reports what would be reset).
  StatusOr<TerminationReport> Kill(const SessionSelector& selector, bool dry_run);
  // Resets the snapshot's sockets that still exist (same cookie). BadInput when the snapshot comes
  // from another boot or another namespace than this host's.
  StatusOr<TerminationReport> KillSnapshot(const SessionSnapshot& snapshot, bool dry_run);
  // The check KillSnapshot starts with: OK when the snapshot was taken in this boot and this
  // host's namespace; BadInput naming the mismatch otherwise.
  Status CheckSnapshot(const SessionSnapshot& snapshot) const;

 private:
  SessionTable() = default;
  TerminationReport Label(TerminationReport rep) const;

  SessionHost host_;
  Access access_ = Access::kReadOnly;
  Netns netns_;
  std::unique_ptr<SockDiag> diag_;
  std::unique_ptr<ConntrackResolver> conntrack_;
  TerminatorOptions options_;
};

// Read-only: the host's sessions from `clients` on the host's ports, recorded with their cookies.
StatusOr<SessionSnapshot> SnapshotSessions(const SessionHost& host, const std::vector<Cidr>& clients);
// Resets only the snapshot's sockets that still exist (same cookie); connections made after the
// snapshot are spared.
StatusOr<TerminationReport> KillSnapshot(const SessionHost& host, const SessionSnapshot& snapshot,
                                         TerminatorOptions options = {});
// Resets every session the selector matches (empty selector ports: the host's ports). The
// confirming re-dump also resets matching connections opened while the kill runs (a client that
// reconnected within those milliseconds); to spare connections made through a new route, snapshot
// before the flip and use KillSnapshot.
StatusOr<TerminationReport> KillSessions(const SessionHost& host, const SessionSelector& selector, bool dry_run);

// OK when this process has CAP_NET_ADMIN; NoPrivilege with the fix otherwise.
Status CheckNetAdmin();

}  // namespace headshift
