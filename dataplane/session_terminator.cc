#include "dataplane/session_terminator.h"

#include "common/prefault.h"
#include "dataplane/destroy_pipeline.h"

#include <algorithm>
#include <chrono>
#include <optional>
#include <thread>
#include <cerrno>
#include <set>
#include <unordered_map>
#include <unordered_set>

#include <spdlog/spdlog.h>

namespace headshift {
namespace {

double MsSince(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

size_t TerminatorOptions::DefaultDestroyThreads() {
  return std::clamp<size_t>(std::thread::hardware_concurrency(), 1, 4);
}

SocketQuery SocketQuery::ForSelector(const SessionSelector& selector) {
  SocketQuery q;
  InetDiagFilter filter = selector.Filter();
  SockDiag::DumpRequest r;
  // One walk for both families when clients of both can appear (an IPv4 client may sit on an
  // AF_INET6 dual-stack socket); AF_INET6 alone when only IPv6 clients are selected.
  r.family = static_cast<uint8_t>(filter.CanMatch(AF_INET) ? AF_UNSPEC : AF_INET6);
  r.states = selector.states & kSelectableTcpStates & ~TcpStateBit(kTcpListen);
  if (selector.ports.size() == 1) r.local_port = selector.ports[0];
  r.bytecode = filter.Build(r.family);
  q.dumps.push_back(std::move(r));
  auto matcher = std::make_shared<SessionMatcher>(selector);
  q.selects = [matcher](const DiagSocket& s) { return matcher->Matches(s); };
  return q;
}

SocketQuery SocketQuery::ForSnapshot(const SessionSnapshot& snapshot) {
  SocketQuery q;
  InetDiagFilter filter;
  for (uint16_t p : snapshot.ports) filter.AddLocalPort(p);
  bool v4 = false, v6 = false;
  for (const auto& s : snapshot.sockets) (s.family == AF_INET ? v4 : v6) = true;
  if (v4 || v6) {
    SockDiag::DumpRequest r;
    r.family = static_cast<uint8_t>(v4 && v6 ? AF_UNSPEC : v4 ? AF_INET : AF_INET6);
    r.states = kSelectableTcpStates & ~TcpStateBit(kTcpListen);
    if (snapshot.ports.size() == 1) r.local_port = snapshot.ports[0];
    r.bytecode = filter.Build(r.family);
    q.dumps.push_back(std::move(r));
  }
  // cookie -> the connection it belonged to. A cookie is never reused within a boot, so a match
  // is the very socket of the snapshot; the tuple check guards against a foreign snapshot.
  auto by_cookie = std::make_shared<std::unordered_map<uint64_t, FlowTuple>>();
  for (const auto& s : snapshot.sockets) (*by_cookie)[s.Cookie()] = s.Flow();
  q.selects = [by_cookie](const DiagSocket& s) {
    if (s.state == kTcpListen) return false;
    auto it = by_cookie->find(s.Cookie());
    return it != by_cookie->end() && it->second == s.Flow();
  };
  return q;
}

StatusOr<std::vector<DiagSocket>> SessionTerminator::SelectTimed(const SocketQuery& query, double* ms) {
  auto t0 = std::chrono::steady_clock::now();
  std::vector<DiagSocket> out;
  for (const auto& d : query.dumps) {
    Status st = diag_->Dump(d, [&](const DiagSocket& s) {
      if (!query.selects(s)) return;
      // Grown by hand so that each new buffer is prefaulted before the copy into it.
      if (out.size() == out.capacity()) ReservePrefaulted(out, std::max<size_t>(1024, out.capacity() * 2));
      out.push_back(s);
    });
    if (!st.ok()) return st;
  }
  if (ms) *ms += MsSince(t0);
  return out;
}

StatusOr<std::vector<DiagSocket>> SessionTerminator::Select(const SocketQuery& query) {
  return SelectTimed(query, nullptr);
}

StatusOr<std::vector<DestroyPipeline::Answer>> SessionTerminator::DestroyPaced(const std::vector<DiagSocket>& selected, int* waves) {
  const size_t wave = std::max<size_t>(
      1, static_cast<size_t>(options_.resets_per_second * TerminatorOptions::kPacingTickMs / 1000));
  const auto tick = std::chrono::milliseconds(TerminatorOptions::kPacingTickMs);
  std::vector<DestroyPipeline::Answer> out;
  ReservePrefaulted(out, selected.size());
  std::vector<int> errors;
  auto next = std::chrono::steady_clock::now();
  for (size_t at = 0; at < selected.size(); at += wave) {
    std::this_thread::sleep_until(next);
    next += tick;
    size_t n = std::min(wave, selected.size() - at);
    errors.assign(n, 0);
    HS_RETURN_IF_ERROR(diag_->Destroy(selected.data() + at, n, errors.data(), 0));
    ++*waves;
    size_t refused = 0;
    for (size_t i = 0; i < n; ++i) {
      out.push_back({selected[at + i], errors[i]});
      refused += !DestroyPrivilegeStatus(errors[i]).ok();
    }
    // A first wave refused entirely: this host cannot destroy sockets; do not pace through the rest.
    if (at == 0 && refused == n) break;
  }
  return out;
}

StatusOr<TerminationReport> SessionTerminator::Run(const SocketQuery& query, SessionOutcome mode) {
  auto t0 = std::chrono::steady_clock::now();
  TerminationReport rep;
  rep.dry_run = mode == SessionOutcome::kWouldReset;
  std::unordered_map<uint64_t, size_t> index;  // cookie -> rep.sockets position

  auto record = [&](const DiagSocket& s) -> SessionRecord& {
    auto [it, fresh] = index.emplace(s.Cookie(), rep.sockets.size());
    if (fresh) rep.sockets.push_back({s, SessionOutcome::kListed, 0});
    return rep.sockets[it->second];
  };

  if (mode != SessionOutcome::kReset) {
    auto selected = SelectTimed(query, &rep.dump_ms);
    if (!selected.ok()) return selected.status();
    rep.rounds = 1;
    ReservePrefaulted(rep.sockets, selected->size());
    for (const auto& s : *selected) record(s).outcome = mode;
  } else {
    // Paced, the first selection is the kill: the confirming dumps retry only its sockets. By then
    // the clients of the first waves have reconnected, and those new sessions are not reset again.
    std::shared_ptr<std::unordered_set<uint64_t>> first;
    SocketQuery confirm = query;
    for (int round = 0;; ++round) {
      DestroyPipeline pipe(diag_);
      auto tw = std::chrono::steady_clock::now();
      std::optional<StatusOr<std::vector<DestroyPipeline::Answer>>> answered;
      if (round == 0 && options_.max_rounds > 0 && options_.resets_per_second > 0) {
        auto selected = SelectTimed(query, nullptr);
        if (!selected.ok()) return selected.status();
        rep.dump_ms += MsSince(tw);
        ++rep.rounds;
        if (selected->empty()) break;
        first = std::make_shared<std::unordered_set<uint64_t>>();
        for (const auto& sock : *selected) first->insert(sock.Cookie());
        confirm.selects = [first, selects = query.selects](const DiagSocket& sock) {
          return first->count(sock.Cookie()) > 0 && selects(sock);
        };
        auto td = std::chrono::steady_clock::now();
        answered = DestroyPaced(*selected, &rep.waves);
        rep.destroy_ms += MsSince(td);
      } else if (round == 0 && options_.max_rounds > 0) {
        // The first walk feeds the pipeline as it goes: resets start while the kernel is still
        // walking its hash. The walk may then skip a socket (see DestroyPipeline); the confirming
        // walk of the next round runs with nothing being destroyed and catches it.
        for (const auto& d : query.dumps) {
          HS_RETURN_IF_ERROR(diag_->Dump(d, [&](const DiagSocket& s) {
            if (query.selects(s)) pipe.Add(s);
          }));
        }
      } else {
        auto selected = SelectTimed(confirm, nullptr);
        if (!selected.ok()) return selected.status();
        if (round == options_.max_rounds && !selected->empty()) {
          // Still selected after the last destroy round: reported, not destroyed.
          rep.dump_ms += MsSince(tw);
          ++rep.rounds;
          for (const auto& s : *selected) record(s).outcome = SessionOutcome::kRemaining;
          break;
        }
        for (const auto& s : *selected) pipe.Add(s);
      }
      if (!answered) {
        rep.dump_ms += MsSince(tw);
        ++rep.rounds;
        if (pipe.added() == 0) break;
        auto td = std::chrono::steady_clock::now();
        answered = pipe.Finish();
        rep.destroy_ms += MsSince(td);
      }
      auto& answers = *answered;
      if (!answers.ok()) return answers.status();
      ReservePrefaulted(rep.sockets, rep.sockets.size() + answers->size());
      index.reserve(rep.sockets.capacity());
      size_t refused = 0;
      int refusal = 0;
      for (const auto& a : *answers) {
        SessionRecord& r = record(a.socket);
        r.ApplyDestroyAnswer(a.error);
        // EOPNOTSUPP on TIME_WAIT only means this kernel cannot abort that state.
        if (!DestroyPrivilegeStatus(a.error).ok() && a.socket.state != kTcpTimeWait) {
          ++refused;
          refusal = a.error;
        }
      }
      if (round == 0 && refused == answers->size()) {
        // Nothing was reset: this host cannot destroy sockets at all.
        return DestroyPrivilegeStatus(refusal);
      }
    }
  }
  rep.total_ms = MsSince(t0);
  rep.Recount();
  spdlog::debug("sessions: {} selected, {} reset, {} gone, {} failed, {} remaining in {} rounds ({:.1f} ms)", rep.selected,
                rep.reset, rep.gone, rep.failed, rep.remaining, rep.rounds, rep.total_ms);
  return rep;
}

}  // namespace headshift
