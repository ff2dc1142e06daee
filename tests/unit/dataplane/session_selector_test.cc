#include "dataplane/session_selector.h"
#include "dataplane/sock_diag.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>

namespace headshift {
namespace {

DiagSocket Sock(uint8_t family, const char* local, const char* remote, uint8_t state = kTcpEstablished,
                uint64_t cookie = 1) {
  return DiagSocket::FromParts(family, state, *InetEndpoint::Parse(local), *InetEndpoint::Parse(remote), cookie, 0);
}

TEST(ParsePorts, AcceptsListsAndRejectsNonPorts) {
  auto p = ParsePorts({"443", "80,8443", "443"});
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(*p, (std::vector<uint16_t>{443, 80, 8443}));
  for (const char* bad : {"0", "65536", "http", "", "80,", "-1", "44 3"}) {
    auto r = ParsePorts({bad});
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.status().code(), ExitCode::kBadInput);
    EXPECT_NE(r.status().message().find(std::string("'").append(bad).append("'")), std::string::npos) << r.status().message();
  }
  EXPECT_NE(ParsePorts({"65536"}).status().message().find("65536"), std::string::npos);
}

TEST(ParseTcpStates, NamesAndListenRefused) {
  auto s = ParseTcpStates({"established,fin-wait-1"});
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(*s, TcpStateBit(kTcpEstablished) | TcpStateBit(kTcpFinWait1));
  auto syn = ParseTcpStates({"SYN_RECV"});
  ASSERT_TRUE(syn.ok());
  EXPECT_TRUE(*syn & TcpStateBit(kTcpNewSynRecv));
  EXPECT_EQ(*ParseTcpStates({"live"}), kLiveTcpStates);
  auto listen = ParseTcpStates({"established,listen"});
  ASSERT_FALSE(listen.ok());
  EXPECT_EQ(listen.status().code(), ExitCode::kBadInput);
  EXPECT_NE(listen.status().message().find("listen"), std::string::npos);
  auto bogus = ParseTcpStates({"estab"});
  ASSERT_FALSE(bogus.ok());
  EXPECT_NE(bogus.status().message().find("estab"), std::string::npos);
  EXPECT_EQ(kLiveTcpStates & TcpStateBit(kTcpListen), 0u);
}

TEST(SessionSelector, ValidateRefusesIncompleteOrDangerousSelections) {
  SessionSelector s;
  s.clients = {*ParseCidr("10.0.0.0/8")};
  EXPECT_EQ(s.Validate(true).code(), ExitCode::kBadInput);  // no port
  s.ports = {443};
  EXPECT_TRUE(s.Validate(true).ok());
  s.states |= TcpStateBit(kTcpListen);
  EXPECT_EQ(s.Validate(true).code(), ExitCode::kBadInput);
  s.states = kLiveTcpStates;
  SessionSelector nobody;
  nobody.ports = {443};
  EXPECT_EQ(nobody.Validate(false).code(), ExitCode::kBadInput);
  nobody.all_clients = true;
  EXPECT_TRUE(nobody.Validate(false).ok());
  EXPECT_EQ(nobody.Validate(true).code(), ExitCode::kBadInput);  // never kill every client
}

TEST(SessionMatcher, ExactCheckOnPortsPrefixesMappedPeersAndStates) {
  SessionSelector sel;
  sel.ports = {443, 8443};
  sel.clients = {*ParseCidr("10.20.0.0/16"), *ParseCidr("2001:db8:1::/48"), *ParseCidr("192.0.2.9")};
  SessionMatcher m(sel);
  EXPECT_TRUE(m.Matches(Sock(AF_INET, "10.0.0.1:443", "10.20.1.1:50000")));
  EXPECT_TRUE(m.Matches(Sock(AF_INET, "10.0.0.1:443", "192.0.2.9:50000")));
  EXPECT_FALSE(m.Matches(Sock(AF_INET, "10.0.0.1:443", "192.0.2.10:50000")));
  EXPECT_FALSE(m.Matches(Sock(AF_INET, "10.0.0.1:444", "10.20.1.1:50000")));   // other port
  EXPECT_FALSE(m.Matches(Sock(AF_INET, "10.0.0.1:443", "10.21.1.1:50000")));   // other client
  EXPECT_TRUE(m.Matches(Sock(AF_INET6, "[::ffff:10.0.0.1]:8443", "[::ffff:10.20.9.9]:1")));  // dual-stack
  EXPECT_TRUE(m.Matches(Sock(AF_INET6, "[2001:db8::1]:443", "[2001:db8:1::5]:1")));
  EXPECT_FALSE(m.Matches(Sock(AF_INET6, "[2001:db8::1]:443", "[2001:db8:2::5]:1")));
  EXPECT_FALSE(m.Matches(Sock(AF_INET, "10.0.0.1:443", "10.20.1.1:50000", kTcpTimeWait)));  // not live
  EXPECT_TRUE(m.Matches(Sock(AF_INET, "10.0.0.1:443", "10.20.1.1:50000", kTcpCloseWait)));
  EXPECT_FALSE(m.Matches(Sock(AF_INET, "0.0.0.0:443", "10.20.1.1:0", kTcpListen)));

  SessionSelector all = sel;
  all.states = kSelectableTcpStates | TcpStateBit(kTcpListen);  // even if asked: never LISTEN
  EXPECT_FALSE(SessionMatcher(all).Matches(Sock(AF_INET, "0.0.0.0:443", "10.20.1.1:0", kTcpListen)));
}

TEST(DestroyPrivilegeStatus, MapsKernelRefusalsToExitFiveWithAFix) {
  Status kernel = DestroyPrivilegeStatus(EOPNOTSUPP);
  EXPECT_EQ(kernel.code(), ExitCode::kNoPrivilege);
  EXPECT_NE(kernel.hint().find("CONFIG_INET_DIAG_DESTROY"), std::string::npos);
  Status cap = DestroyPrivilegeStatus(EPERM);
  EXPECT_EQ(cap.code(), ExitCode::kNoPrivilege);
  EXPECT_NE(cap.message().find("CAP_NET_ADMIN"), std::string::npos);
  EXPECT_TRUE(DestroyPrivilegeStatus(ENOENT).ok());
  EXPECT_TRUE(DestroyPrivilegeStatus(0).ok());
}

TEST(SessionMatcher, NatFlowsMatchExactConnectionsOnly) {
  SessionSelector sel;
  sel.ports = {8080};
  sel.flows = {{*InetEndpoint::Parse("10.62.2.2:8080"), *InetEndpoint::Parse("10.62.2.1:40001")}};
  SessionMatcher m(sel);
  EXPECT_TRUE(m.Matches(Sock(AF_INET, "10.62.2.2:8080", "10.62.2.1:40001")));
  EXPECT_TRUE(m.Matches(Sock(AF_INET6, "[::ffff:10.62.2.2]:8080", "[::ffff:10.62.2.1]:40001")));
  EXPECT_FALSE(m.Matches(Sock(AF_INET, "10.62.2.2:8080", "10.62.2.1:40002")));  // same NAT address, other client
}

}  // namespace
}  // namespace headshift
