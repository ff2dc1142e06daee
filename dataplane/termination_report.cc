#include "dataplane/termination_report.h"

#include <cstring>
#include <sstream>

#include "dataplane/tcp_state.h"

namespace headshift {

const char* SessionOutcomeName(SessionOutcome o) {
  switch (o) {
    case SessionOutcome::kListed: return "listed";
    case SessionOutcome::kWouldReset: return "would_reset";
    case SessionOutcome::kReset: return "reset";
    case SessionOutcome::kGone: return "gone";
    case SessionOutcome::kFailed: return "failed";
    case SessionOutcome::kRemaining: return "remaining";
  }
  return "unknown";
}

void TerminationReport::Recount() {
  selected = sockets.size();
  reset = gone = failed = remaining = 0;
  for (const auto& r : sockets) {
    switch (r.outcome) {
      case SessionOutcome::kReset: ++reset; break;
      case SessionOutcome::kGone: ++gone; break;
      case SessionOutcome::kFailed: ++failed; break;
      case SessionOutcome::kRemaining: ++remaining; break;
      default: break;
    }
  }
}

void TerminationReport::Merge(const TerminationReport& o) {
  dry_run = dry_run || o.dry_run;
  rounds = std::max(rounds, o.rounds);
  nat_flows += o.nat_flows;
  sockets.insert(sockets.end(), o.sockets.begin(), o.sockets.end());
  dump_ms += o.dump_ms;
  destroy_ms += o.destroy_ms;
  total_ms += o.total_ms;
  Recount();
}

nlohmann::json SocketToJson(const DiagSocket& s) {
  return {{"family", s.FamilyName()},
          {"local", s.Local().ToString()},
          {"remote", s.Remote().ToString()},
          {"state", TcpStateName(s.state)},
          {"cookie", s.Cookie()}};
}

nlohmann::json TerminationReport::ToJson() const {
  nlohmann::json socks = nlohmann::json::array();
  for (const auto& r : sockets) {
    nlohmann::json j = SocketToJson(r.socket);
    j["outcome"] = SessionOutcomeName(r.outcome);
    if (r.error != 0) j["error"] = std::strerror(r.error);
    socks.push_back(std::move(j));
  }
  nlohmann::json j = {{"selected", selected},   {"reset", reset},   {"gone", gone},
                      {"failed", failed},       {"remaining", remaining}, {"dry_run", dry_run},
                      {"rounds", rounds},       {"sockets", std::move(socks)},
                      {"timings_ms", {{"dump", dump_ms}, {"destroy", destroy_ms}, {"total", total_ms}}}};
  if (!host.empty()) j["host"] = host;
  j["netns"] = netns;
  if (nat_flows) j["nat_flows"] = nat_flows;
  return j;
}

std::string TerminationReport::ToText() const {
  std::ostringstream o;
  for (const auto& r : sockets) {
    o << r.socket.FamilyName() << "  " << r.socket.Local().ToString() << "  " << r.socket.Remote().ToString() << "  "
      << TcpStateName(r.socket.state) << "  cookie=" << r.socket.Cookie() << "  " << SessionOutcomeName(r.outcome);
    if (r.error != 0) o << " (" << std::strerror(r.error) << ")";
    o << "\n";
  }
  o << "selected " << selected << ", reset " << reset << ", gone " << gone << ", failed " << failed;
  if (remaining) o << ", remaining " << remaining;
  if (dry_run) o << " (dry run: nothing was reset)";
  o << "\n";
  return o.str();
}

}  // namespace headshift
