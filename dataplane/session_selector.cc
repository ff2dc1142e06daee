#include "dataplane/session_selector.h"

#include <algorithm>
#include <charconv>
#include <cstring>
#include <string_view>

namespace headshift {

Status SessionSelector::Validate(bool for_kill) const {
  if (ports.empty()) {
    return Status::BadInput("no proxy port given", "pass --port with the proxy's listen port(s), e.g. --port 443");
  }
  for (uint16_t p : ports) {
    if (p == 0) return Status::BadInput("proxy port 0 is not a port", "pass ports 1..65535");
  }
  if (clients.empty() && flows.empty() && !all_clients) {
    return Status::BadInput("no client given: refusing to select every session on the port",
                            "pass --client CIDR for the tenant's client addresses (or --snapshot-in FILE)");
  }
  if (all_clients && for_kill) {
    return Status::BadInput("refusing to reset every client on the port", "pass --client CIDR for the tenant's clients");
  }
  if ((states & kSelectableTcpStates) == 0) return Status::BadInput("no TCP state selected", "omit --state for the default (live connections)");
  if (states & TcpStateBit(kTcpListen)) {
    return Status::BadInput("TCP state LISTEN cannot be selected: resetting a listener stops the proxy accepting anyone",
                            "omit --state for the default (live connections)");
  }
  return Status::Ok();
}

InetDiagFilter SessionSelector::Filter() const {
  InetDiagFilter f;
  for (uint16_t p : ports) f.AddLocalPort(p);
  if (!all_clients) {
    for (const auto& c : clients) f.AddRemotePrefix(c);
    for (const auto& fl : flows) f.AddRemoteEndpoint(fl.remote);
  }
  return f;
}

std::string SessionSelector::Describe() const {
  std::string s = "ports";
  // Separator and value appended one at a time: `(i ? "," : " ") + std::to_string(...)` trips GCC 12's
  // -Wrestrict false positive at -O3 (GCC PR 105329).
  for (size_t i = 0; i < ports.size(); ++i) {
    s += i ? ',' : ' ';
    s += std::to_string(ports[i]);
  }
  if (all_clients) return s + " clients any";
  if (!clients.empty()) {
    s += " clients";
    for (size_t i = 0; i < clients.size(); ++i) {
      s += i ? ',' : ' ';
      s += clients[i].ToString();
    }
  }
  if (!flows.empty()) s += " nat-flows " + std::to_string(flows.size());
  return s;
}

size_t SessionMatcher::AddrHash::operator()(const IpAddress& a) const {
  size_t h = static_cast<size_t>(a.family);
  for (uint8_t b : a.bytes) h = h * 131 + b;
  return h;
}

SessionMatcher::SessionMatcher(const SessionSelector& sel)
    : states_(sel.states & kSelectableTcpStates & ~TcpStateBit(kTcpListen)),
      ports_(sel.ports.begin(), sel.ports.end()),
      all_clients_(sel.all_clients) {
  for (const auto& c : sel.clients) {
    int full = c.network.family == AF_INET ? 32 : 128;
    if (c.prefix_len == full) {
      hosts_.insert(c.network);
    } else {
      prefixes_.push_back(c);
    }
  }
  for (const auto& f : sel.flows) flows_.insert(f.Normalized());
}

bool SessionMatcher::Matches(const DiagSocket& s) const {
  if (s.state == kTcpListen || !(states_ & TcpStateBit(s.state))) return false;
  FlowTuple flow = s.Flow();
  if (!ports_.count(flow.local.port)) return false;
  if (all_clients_) return true;
  if (hosts_.count(flow.remote.addr)) return true;
  for (const auto& c : prefixes_) {
    if (c.Contains(flow.remote.addr)) return true;
  }
  return !flows_.empty() && flows_.count(flow) > 0;
}

StatusOr<std::vector<uint16_t>> ParsePorts(const std::vector<std::string>& texts) {
  std::vector<uint16_t> out;
  for (const auto& t : texts) {
    std::string_view rest = t;
    while (true) {
      size_t comma = rest.find(',');
      std::string_view word = rest.substr(0, comma);
      unsigned v = 0;
      auto [end, ec] = std::from_chars(word.data(), word.data() + word.size(), v);
      if (word.empty()) {
        return Status::BadInput("port list '" + t + "' has an empty entry", "pass ports 1..65535, e.g. --port 80,443");
      }
      if (ec != std::errc() || end != word.data() + word.size() || v < 1 || v > 65535) {
        return Status::BadInput("port '" + std::string(word) + "' is not a TCP port", "pass ports 1..65535, e.g. --port 80,443");
      }
      if (std::find(out.begin(), out.end(), v) == out.end()) out.push_back(static_cast<uint16_t>(v));
      if (comma == std::string_view::npos) break;
      rest = rest.substr(comma + 1);
    }
  }
  return out;
}

}  // namespace headshift
