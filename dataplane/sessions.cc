#include "dataplane/sessions.h"

#include <cerrno>
#include <chrono>
#include <cstring>
#include <linux/capability.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <unordered_set>

#include <spdlog/spdlog.h>

namespace headshift {
namespace {

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

bool SelectsNobody(const SessionSelector& s) { return !s.all_clients && s.clients.empty() && s.flows.empty(); }

}  // namespace

Status CheckNetAdmin() {
  __user_cap_header_struct hdr{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2]{};
  if (syscall(SYS_capget, &hdr, data) != 0) return Status::Failed(std::string("capget: ") + std::strerror(errno));
  if (data[CAP_NET_ADMIN / 32].effective & (1u << (CAP_NET_ADMIN % 32))) return Status::Ok();
  return Status::NoPrivilege("resetting sessions needs CAP_NET_ADMIN, which this process does not have",
                             "run headshift as root, or grant it: setcap cap_net_admin,cap_sys_admin+ep "
                             "$(command -v headshift)");
}

StatusOr<std::unique_ptr<SessionTable>> SessionTable::Open(const SessionHost& host, Access access,
                                                           TerminatorOptions options) {
  std::unique_ptr<SessionTable> t(new SessionTable());
  t->host_ = host;
  t->access_ = access;
  t->options_ = options;
  for (uint16_t p : host.ports) {
    if (p == 0) return Status::BadInput("session host '" + host.name + "' has port 0", "list the proxy's listen ports (1..65535)");
  }
  auto ns = Netns::Open(host.netns);
  if (!ns.ok()) return ns.status();
  t->netns_ = std::move(ns).value();
  if (!host.conntrack_netns.empty()) {
    auto cns = Netns::Open(host.conntrack_netns);
    if (!cns.ok()) return cns.status().WithContext("conntrack namespace");
    auto ct = ConntrackResolver::Open(*cns);
    if (!ct.ok()) return ct.status();
    t->conntrack_ = std::move(ct).value();
  }
  if (access == Access::kDestroy) HS_RETURN_IF_ERROR(CheckNetAdmin());
  Status st = t->netns_.Run([&t, access] {
    auto d = SockDiag::Open(access == Access::kDestroy ? t->options_.destroy_threads : 1);
    if (!d.ok()) return d.status();
    t->diag_ = std::move(d).value();
    return Status::Ok();
  });
  if (!st.ok()) return st;
  if (access == Access::kDestroy) HS_RETURN_IF_ERROR(t->diag_->CheckDestroySupported().WithContext(t->netns_.Describe()));
  return t;
}

StatusOr<SessionSelector> SessionTable::Resolve(const SessionSelector& selector, bool for_kill, size_t* nat_flows) {
  SessionSelector out = selector;
  if (out.ports.empty()) out.ports = host_.ports;
  HS_RETURN_IF_ERROR(out.Validate(for_kill));
  if (conntrack_ && !out.all_clients && !out.clients.empty()) {
    auto flows = conntrack_->Resolve(out.clients, out.ports);
    if (!flows.ok()) return flows.status();
    for (const auto& f : *flows) out.flows.push_back(f.proxy_view);
    if (nat_flows) *nat_flows = flows->size();
    spdlog::debug("sessions: {} client(s) resolved to {} NAT flow(s) via conntrack in {}", out.clients.size(),
                  flows->size(), host_.conntrack_netns);
    // Behind NAT the proxy's peers are NAT addresses: select the resolved connections only.
    out.clients.clear();
  }
  return out;
}

TerminationReport SessionTable::Label(TerminationReport rep) const {
  rep.host = host_.name;
  rep.netns = host_.netns;
  return rep;
}

StatusOr<TerminationReport> SessionTable::List(const SessionSelector& selector) {
  size_t nat = 0;
  auto sel = Resolve(selector, false, &nat);
  if (!sel.ok()) return sel.status();
  TerminationReport rep;
  if (!SelectsNobody(*sel)) {
    SessionTerminator term(diag_.get(), options_);
    auto r = term.Run(SocketQuery::ForSelector(*sel), SessionOutcome::kListed);
    if (!r.ok()) return r.status();
    rep = std::move(r).value();
  }
  rep.nat_flows = nat;
  return Label(std::move(rep));
}

StatusOr<SessionSnapshot> SessionTable::Snapshot(const SessionSelector& selector) {
  auto sel = Resolve(selector, true, nullptr);
  if (!sel.ok()) return sel.status();
  SessionSnapshot snap;
  snap.host = host_.name;
  snap.netns = host_.netns;
  snap.netns_inode = netns_.inode();
  snap.boot_id = CurrentBootId();
  snap.ports = sel->ports;
  for (const auto& c : selector.clients) snap.clients.push_back(c.ToString());
  snap.taken_at_ms = NowMs();
  if (!SelectsNobody(*sel)) {
    SessionTerminator term(diag_.get(), options_);
    auto socks = term.Select(SocketQuery::ForSelector(*sel));
    if (!socks.ok()) return socks.status();
    snap.sockets = std::move(socks).value();
  }
  return snap;
}

StatusOr<TerminationReport> SessionTable::Kill(const SessionSelector& selector, bool dry_run) {
  if (!dry_run && access_ != Access::kDestroy) return Status::Failed("session table was opened read-only");
  size_t nat = 0;
  auto sel = Resolve(selector, true, &nat);
  if (!sel.ok()) return sel.status();
  TerminationReport rep;
  rep.dry_run = dry_run;
  if (!SelectsNobody(*sel)) {
    SessionTerminator term(diag_.get(), options_);
    auto r = term.Run(SocketQuery::ForSelector(*sel), dry_run ? SessionOutcome::kWouldReset : SessionOutcome::kReset);
    if (!r.ok()) return r.status();
    rep = std::move(r).value();
  }
  rep.nat_flows = nat;
  return Label(std::move(rep));
}

Status SessionTable::CheckSnapshot(const SessionSnapshot& snapshot) const {
  const std::string fix = "take a new snapshot (sessions list --snapshot-out) on this host before the route flips";
  std::string boot = CurrentBootId();
  if (snapshot.boot_id != boot) {
    return Status::BadInput("snapshot of host '" + snapshot.host + "' was taken before a reboot (boot id " +
                                snapshot.boot_id + ", now " + boot + "): its socket cookies mean nothing now",
                            fix);
  }
  if (snapshot.netns_inode != netns_.inode()) {
    return Status::BadInput("snapshot of host '" + snapshot.host + "' was taken in another network namespace (inode " +
                                std::to_string(snapshot.netns_inode) + ", " + netns_.Describe() + " is inode " +
                                std::to_string(netns_.inode()) + ")",
                            fix);
  }
  return Status::Ok();
}

StatusOr<TerminationReport> SessionTable::KillSnapshot(const SessionSnapshot& snapshot, bool dry_run) {
  if (!dry_run && access_ != Access::kDestroy) return Status::Failed("session table was opened read-only");
  HS_RETURN_IF_ERROR(CheckSnapshot(snapshot));
  TerminationReport rep;
  rep.dry_run = dry_run;
  if (!snapshot.sockets.empty()) {
    SessionTerminator term(diag_.get(), options_);
    auto r = term.Run(SocketQuery::ForSnapshot(snapshot), dry_run ? SessionOutcome::kWouldReset : SessionOutcome::kReset);
    if (!r.ok()) return r.status();
    rep = std::move(r).value();
  }
  // Snapshot sockets no dump found any more closed on their own before the kill: gone.
  std::unordered_set<uint64_t> seen;
  for (const auto& r : rep.sockets) seen.insert(r.socket.Cookie());
  for (const auto& s : snapshot.sockets) {
    if (!seen.count(s.Cookie())) rep.sockets.push_back({s, SessionOutcome::kGone, ENOENT});
  }
  rep.Recount();
  return Label(std::move(rep));
}

StatusOr<SessionSnapshot> SnapshotSessions(const SessionHost& host, const std::vector<Cidr>& clients) {
  auto t = SessionTable::Open(host, SessionTable::Access::kReadOnly);
  if (!t.ok()) return t.status();
  SessionSelector sel;
  sel.clients = clients;
  return (*t)->Snapshot(sel);
}

StatusOr<TerminationReport> KillSnapshot(const SessionHost& host, const SessionSnapshot& snapshot,
                                         TerminatorOptions options) {
  auto t = SessionTable::Open(host, SessionTable::Access::kDestroy, options);
  if (!t.ok()) return t.status();
  return (*t)->KillSnapshot(snapshot, false);
}

StatusOr<TerminationReport> KillSessions(const SessionHost& host, const SessionSelector& selector, bool dry_run) {
  auto t = SessionTable::Open(host, dry_run ? SessionTable::Access::kReadOnly : SessionTable::Access::kDestroy);
  if (!t.ok()) return t.status();
  return (*t)->Kill(selector, dry_run);
}

}  // namespace headshift
