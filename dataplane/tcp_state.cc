#include "dataplane/tcp_state.h"

#include <algorithm>
#include <cctype>

namespace headshift {
namespace {

struct StateName {
  uint8_t state;
  const char* name;
};
constexpr StateName kNames[] = {
    {kTcpEstablished, "ESTABLISHED"}, {kTcpSynSent, "SYN_SENT"},   {kTcpSynRecv, "SYN_RECV"},
    {kTcpFinWait1, "FIN_WAIT1"},      {kTcpFinWait2, "FIN_WAIT2"}, {kTcpTimeWait, "TIME_WAIT"},
    {kTcpClose, "CLOSE"},             {kTcpCloseWait, "CLOSE_WAIT"}, {kTcpLastAck, "LAST_ACK"},
    {kTcpListen, "LISTEN"},           {kTcpClosing, "CLOSING"},    {kTcpNewSynRecv, "NEW_SYN_RECV"},
};

}  // namespace

std::string TcpStateName(uint8_t state) {
  for (const auto& n : kNames) {
    if (n.state == state) return n.name;
  }
  return "UNKNOWN(" + std::to_string(state) + ")";
}

StatusOr<uint32_t> ParseTcpStates(const std::vector<std::string>& names) {
  const std::string fix =
      "use established, syn-sent, syn-recv, fin-wait-1, fin-wait-2, close-wait, last-ack, closing, "
      "time-wait, close or live (the default)";
  uint32_t mask = 0;
  for (const auto& list : names) {
    size_t start = 0;
    while (start <= list.size()) {
      size_t comma = list.find(',', start);
      std::string word = list.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
      start = comma == std::string::npos ? list.size() + 1 : comma + 1;
      std::string norm;
      for (char c : word) {
        if (c == '-') c = '_';
        norm.push_back(static_cast<char>(std::toupper(static_cast<unsigned char>(c))));
      }
      // ss(8) spells them fin-wait-1 / fin-wait-2.
      if (norm == "FIN_WAIT_1") norm = "FIN_WAIT1";
      if (norm == "FIN_WAIT_2") norm = "FIN_WAIT2";
      if (norm == "LIVE") {
        mask |= kLiveTcpStates;
        continue;
      }
      if (norm == "LISTEN" || norm == "LISTENING") {
        return Status::BadInput("TCP state '" + word + "' cannot be selected: resetting a listener stops the proxy accepting anyone",
                                fix);
      }
      auto it = std::find_if(std::begin(kNames), std::end(kNames), [&](const StateName& n) { return norm == n.name; });
      if (it == std::end(kNames)) return Status::BadInput("unknown TCP state '" + word + "'", fix);
      mask |= TcpStateBit(it->state);
      // A connection in SYN_RECV is a request socket (NEW_SYN_RECV) in the kernel's tables.
      if (it->state == kTcpSynRecv) mask |= TcpStateBit(kTcpNewSynRecv);
    }
  }
  if (mask == 0) return Status::BadInput("no TCP state given", fix);
  return mask;
}

}  // namespace headshift
