// Test lab for the dataplane integration tests: real network namespaces (named hsdp<pid><tag>,
// removed in the destructor; namespaces left by a crashed earlier run of these tests — whose pid no
// longer exists — are removed on start), real TCP sockets opened inside them, and helpers that
// prove what happened to a connection (reset, or still exchanging data).
//
// Failures throw std::runtime_error; gtest reports them as test failures.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "dataplane/netns.h"

namespace headshift::testing {

// Removes /run/netns/hsdp<pid>* namespaces whose <pid> is not a running process.
void RemoveStaleTestNetns();

class TestNetns {
 public:
  // Creates hsdp<pid><tag> with `lo` up. REQUIRES: tag short enough for veth names (<= 4 chars).
  explicit TestNetns(const std::string& tag);
  ~TestNetns();
  TestNetns(const TestNetns&) = delete;
  TestNetns& operator=(const TestNetns&) = delete;

  const std::string& name() const { return name_; }
  const Netns& netns() const { return handle_; }
  // Runs `ip -n NAME args...`; throws on failure.
  void Ip(const std::vector<std::string>& args) const;
  // Runs argv inside the namespace (ip netns exec); throws on failure.
  void Exec(const std::vector<std::string>& argv) const;
  // Adds an address to lo (IPv6 with nodad).
  void AddLoopbackAddress(const std::string& cidr) const;

 private:
  std::string name_;
  Netns handle_;
};

// Runs argv (no shell); throws with its output on a non-zero exit.
void MustRun(const std::vector<std::string>& argv);

// A listening socket in `ns` on addr:port. dual_stack: an AF_INET6 socket with IPV6_V6ONLY off
// (addr "::"). Non-blocking.
int Listen(const TestNetns& ns, const std::string& addr, uint16_t port, bool dual_stack = false);

// One TCP connection: the client socket (opened in the client's namespace, bound to `src`) and the
// server socket accepted from `listener`. Both non-blocking.
struct Conn {
  int client = -1;
  int server = -1;
  std::string label;      // for messages
  std::string peer;       // the client as the server's socket sees it (recorded at accept)
  std::string local;      // the server socket's local endpoint
  size_t pending_c2s = 0;  // bytes queued by MakeBusy, not yet read by the server
  size_t pending_s2c = 0;
};

Conn Connect(const TestNetns& client_ns, const std::string& src, const std::string& dst, uint16_t port, int listener,
             const std::string& label);
void Close(Conn& c);

// The server socket's view, recorded at accept ("addr:port", "[v6]:port"): the remote (client or
// NAT address) and the local endpoint. Recorded because a destroyed socket no longer has a peer.
inline const std::string& ClientEndpoint(const Conn& c) { return c.peer; }
inline const std::string& ServerEndpoint(const Conn& c) { return c.local; }

// Fills both directions' queues (sender writes until the peer's window is full), so the connection
// has data in flight and queued when it is reset.
void MakeBusy(Conn& c);

// Drains queued data, then sends a message each way and reads it back. Returns "" on success or
// what went wrong.
std::string Exchange(Conn& c);

// Reads until the socket reports an error; returns that errno (ECONNRESET for a reset peer,
// ECONNABORTED for a destroyed socket), 0 for an orderly EOF, -1 if nothing happened in timeout.
int AwaitError(int fd, int timeout_ms = 3000);

// A new connection through `listener` exchanges data (the listener still accepts).
std::string ListenerAccepts(const TestNetns& client_ns, const std::string& src, const std::string& dst, uint16_t port,
                            int listener);

}  // namespace headshift::testing
