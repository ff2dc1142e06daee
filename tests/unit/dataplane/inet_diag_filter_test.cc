// Checks InetDiagFilter programs against a line-by-line transcription of the kernel's verifier
// (inet_diag_bc_audit + valid_cc + valid_hostcond/valid_port_comparison) and interpreter
// (inet_diag_bc_run) from net/ipv4/inet_diag.c (Linux 6.x). The real kernel runs the same programs in
// tests/integration/dataplane (sock_diag_test.cc); this test covers the combinations exhaustively.
#include "dataplane/inet_diag_filter.h"

#include <arpa/inet.h>
#include <cstring>
#include <gtest/gtest.h>
#include <linux/inet_diag.h>

namespace headshift {
namespace {

struct Entry {  // struct inet_diag_entry
  int family;
  uint32_t saddr[4];
  uint32_t daddr[4];
  uint16_t sport, dport;  // host order
};

Entry Make(const char* local, const char* remote) {
  auto l = *InetEndpoint::Parse(local);
  auto r = *InetEndpoint::Parse(remote);
  Entry e{};
  e.family = l.addr.family;
  std::memcpy(e.saddr, l.addr.bytes.data(), l.addr.size());
  std::memcpy(e.daddr, r.addr.bytes.data(), r.addr.size());
  e.sport = l.port;
  e.dport = r.port;
  return e;
}

const inet_diag_bc_op* OpAt(const uint8_t* p) { return reinterpret_cast<const inet_diag_bc_op*>(p); }

bool BitstringMatch(const uint32_t* a1, const uint32_t* a2, int bits) {
  int words = bits >> 5;
  bits &= 0x1f;
  if (words && std::memcmp(a1, a2, words << 2)) return false;
  if (bits) {
    uint32_t mask = htonl(0xffffffffu << (32 - bits));
    if ((a1[words] ^ a2[words]) & mask) return false;
  }
  return true;
}

bool KernelRun(const std::vector<uint8_t>& prog, const Entry& e) {
  const uint8_t* bc = prog.data();
  int len = static_cast<int>(prog.size());
  while (len > 0) {
    int yes = 1;
    const inet_diag_bc_op* op = OpAt(bc);
    switch (op->code) {
      case INET_DIAG_BC_NOP: break;
      case INET_DIAG_BC_JMP: yes = 0; break;
      case INET_DIAG_BC_S_EQ: yes = e.sport == op[1].no; break;
      case INET_DIAG_BC_S_GE: yes = e.sport >= op[1].no; break;
      case INET_DIAG_BC_S_LE: yes = e.sport <= op[1].no; break;
      case INET_DIAG_BC_D_EQ: yes = e.dport == op[1].no; break;
      case INET_DIAG_BC_D_GE: yes = e.dport >= op[1].no; break;
      case INET_DIAG_BC_D_LE: yes = e.dport <= op[1].no; break;
      case INET_DIAG_BC_S_COND:
      case INET_DIAG_BC_D_COND: {
        inet_diag_hostcond cond;
        std::memcpy(&cond, op + 1, sizeof cond);
        uint32_t caddr[4] = {};
        std::memcpy(caddr, reinterpret_cast<const uint8_t*>(op + 1) + sizeof cond,
                    cond.family == AF_INET ? 4 : cond.family == AF_INET6 ? 16 : 0);
        if (cond.port != -1 && cond.port != (op->code == INET_DIAG_BC_S_COND ? e.sport : e.dport)) {
          yes = 0;
          break;
        }
        const uint32_t* addr = op->code == INET_DIAG_BC_S_COND ? e.saddr : e.daddr;
        if (cond.family != AF_UNSPEC && cond.family != e.family) {
          if (e.family == AF_INET6 && cond.family == AF_INET) {
            if (addr[0] == 0 && addr[1] == 0 && addr[2] == htonl(0xffff) && BitstringMatch(addr + 3, caddr, cond.prefix_len))
              break;
          }
          yes = 0;
          break;
        }
        if (cond.prefix_len == 0) break;
        if (BitstringMatch(addr, caddr, cond.prefix_len)) break;
        yes = 0;
        break;
      }
      default: ADD_FAILURE() << "unexpected op " << int(op->code); return false;
    }
    if (yes) {
      len -= op->yes;
      bc += op->yes;
    } else {
      len -= op->no;
      bc += op->no;
    }
  }
  return len == 0;
}

bool ValidCc(const uint8_t* bc, int len, int cc) {
  while (len >= 0) {
    const inet_diag_bc_op* op = OpAt(bc);
    if (cc > len) return false;
    if (cc == len) return true;
    if (op->yes < 4 || op->yes & 3) return false;
    len -= op->yes;
    bc += op->yes;
  }
  return false;
}

bool KernelAudit(const std::vector<uint8_t>& prog) {
  if (prog.size() < sizeof(inet_diag_bc_op)) return false;
  const uint8_t* bytecode = prog.data();
  const uint8_t* bc = bytecode;
  int bytecode_len = static_cast<int>(prog.size()), len = bytecode_len;
  while (len > 0) {
    int min_len = sizeof(inet_diag_bc_op);
    const inet_diag_bc_op* op = OpAt(bc);
    switch (op->code) {
      case INET_DIAG_BC_S_COND:
      case INET_DIAG_BC_D_COND: {
        min_len += sizeof(inet_diag_hostcond);
        if (len < min_len) return false;
        inet_diag_hostcond cond;
        std::memcpy(&cond, op + 1, sizeof cond);
        int addr_len = cond.family == AF_UNSPEC ? 0 : cond.family == AF_INET ? 4 : cond.family == AF_INET6 ? 16 : -1;
        if (addr_len < 0) return false;
        min_len += addr_len;
        if (len < min_len) return false;
        if (cond.prefix_len > 8 * addr_len) return false;
        break;
      }
      case INET_DIAG_BC_S_EQ: case INET_DIAG_BC_S_GE: case INET_DIAG_BC_S_LE:
      case INET_DIAG_BC_D_EQ: case INET_DIAG_BC_D_GE: case INET_DIAG_BC_D_LE:
        min_len += sizeof(inet_diag_bc_op);
        if (len < min_len) return false;
        break;
      case INET_DIAG_BC_JMP:
      case INET_DIAG_BC_NOP:
        break;
      default:
        return false;
    }
    if (op->code != INET_DIAG_BC_NOP) {
      if (op->no < min_len || op->no > len + 4 || op->no & 3) return false;
      if (op->no < len && !ValidCc(bytecode, bytecode_len, len - op->no)) return false;
    }
    if (op->yes < min_len || op->yes > len + 4 || op->yes & 3) return false;
    bc += op->yes;
    len -= op->yes;
  }
  return len == 0;
}

InetDiagFilter TenantFilter() {
  InetDiagFilter f;
  f.AddLocalPort(443);
  f.AddLocalPort(8443);
  f.AddRemotePrefix(*ParseCidr("10.20.0.0/16"));
  f.AddRemotePrefix(*ParseCidr("198.51.100.7"));
  f.AddRemotePrefix(*ParseCidr("2001:db8:1::/48"));
  return f;
}

TEST(InetDiagFilter, ProgramPassesTheKernelVerifier) {
  InetDiagFilter f = TenantFilter();
  for (int fam : {AF_INET, AF_INET6}) {
    auto prog = f.Build(fam);
    ASSERT_FALSE(prog.empty());
    EXPECT_EQ(prog.size() % 4, 0u);
    EXPECT_TRUE(KernelAudit(prog)) << "family " << fam;
  }
}

TEST(InetDiagFilter, Ipv4DumpSelectsTenantPortsAndPrefixes) {
  auto prog = TenantFilter().Build(AF_INET);
  EXPECT_TRUE(KernelRun(prog, Make("10.0.0.1:443", "10.20.3.4:5000")));
  EXPECT_TRUE(KernelRun(prog, Make("10.0.0.1:8443", "10.20.255.4:5000")));
  EXPECT_TRUE(KernelRun(prog, Make("10.0.0.1:443", "198.51.100.7:1")));
  EXPECT_FALSE(KernelRun(prog, Make("10.0.0.1:443", "198.51.100.8:1")));
  EXPECT_FALSE(KernelRun(prog, Make("10.0.0.1:443", "10.21.3.4:5000")));
  EXPECT_FALSE(KernelRun(prog, Make("10.0.0.1:444", "10.20.3.4:5000")));
  EXPECT_FALSE(KernelRun(prog, Make("10.0.0.1:442", "10.20.3.4:5000")));
  EXPECT_FALSE(KernelRun(prog, Make("10.0.0.1:8444", "10.20.3.4:5000")));
}

TEST(InetDiagFilter, Ipv6DumpMatchesV6PrefixesAndV4MappedPeers) {
  auto prog = TenantFilter().Build(AF_INET6);
  EXPECT_TRUE(KernelRun(prog, Make("[2001:db8::1]:443", "[2001:db8:1::9]:5000")));
  EXPECT_FALSE(KernelRun(prog, Make("[2001:db8::1]:443", "[2001:db8:2::9]:5000")));
  EXPECT_TRUE(KernelRun(prog, Make("[::ffff:10.0.0.1]:443", "[::ffff:10.20.3.4]:5000")));
  EXPECT_FALSE(KernelRun(prog, Make("[::ffff:10.0.0.1]:443", "[::ffff:10.21.3.4]:5000")));
  EXPECT_FALSE(KernelRun(prog, Make("[2001:db8::1]:80", "[2001:db8:1::9]:5000")));
}

TEST(InetDiagFilter, BothFamiliesProgramServesIpv4AndIpv6Sockets) {
  auto prog = TenantFilter().Build(AF_UNSPEC);
  ASSERT_TRUE(KernelAudit(prog));
  EXPECT_TRUE(KernelRun(prog, Make("10.0.0.1:443", "10.20.3.4:5000")));
  EXPECT_TRUE(KernelRun(prog, Make("[::ffff:10.0.0.1]:443", "[::ffff:10.20.3.4]:5000")));
  EXPECT_TRUE(KernelRun(prog, Make("[2001:db8::1]:443", "[2001:db8:1::9]:5000")));
  EXPECT_FALSE(KernelRun(prog, Make("10.0.0.1:443", "10.21.3.4:5000")));
  EXPECT_FALSE(KernelRun(prog, Make("[2001:db8::1]:443", "[2001:db8:2::9]:5000")));
}

TEST(InetDiagFilter, ExactEndpointsCompareAddressAndPort) {
  InetDiagFilter f;
  f.AddLocalPort(8080);
  f.AddRemoteEndpoint(*InetEndpoint::Parse("10.62.2.1:40001"));
  f.AddRemoteEndpoint(*InetEndpoint::Parse("10.62.2.1:40003"));
  auto prog = f.Build(AF_INET);
  ASSERT_TRUE(KernelAudit(prog));
  EXPECT_TRUE(KernelRun(prog, Make("10.62.2.2:8080", "10.62.2.1:40001")));
  EXPECT_TRUE(KernelRun(prog, Make("10.62.2.2:8080", "10.62.2.1:40003")));
  EXPECT_FALSE(KernelRun(prog, Make("10.62.2.2:8080", "10.62.2.1:40002")));
  auto prog6 = f.Build(AF_INET6);
  ASSERT_TRUE(KernelAudit(prog6));
  EXPECT_TRUE(KernelRun(prog6, Make("[::ffff:10.62.2.2]:8080", "[::ffff:10.62.2.1]:40001")));
  EXPECT_FALSE(KernelRun(prog6, Make("[::ffff:10.62.2.2]:8080", "[::ffff:10.62.2.1]:40002")));
}

TEST(InetDiagFilter, SkipsFamiliesNoClientCanAppearIn) {
  InetDiagFilter v6only;
  v6only.AddLocalPort(443);
  v6only.AddRemotePrefix(*ParseCidr("2001:db8::/32"));
  EXPECT_FALSE(v6only.CanMatch(AF_INET));
  EXPECT_TRUE(v6only.CanMatch(AF_INET6));
  InetDiagFilter v4only;
  v4only.AddRemotePrefix(*ParseCidr("10.0.0.0/8"));
  EXPECT_TRUE(v4only.CanMatch(AF_INET));
  EXPECT_TRUE(v4only.CanMatch(AF_INET6));  // v4-mapped peers
  InetDiagFilter ports;
  ports.AddLocalPort(1);
  EXPECT_TRUE(ports.CanMatch(AF_INET));
}

TEST(InetDiagFilter, TooManyPrefixesFallBackToPortsOnly) {
  InetDiagFilter f;
  f.AddLocalPort(443);
  // 3000 IPv6 /128s: 3000 * 32 bytes > 64 KiB.
  for (int i = 0; i < 3000; ++i) {
    IpAddress a = *IpAddress::Parse("2001:db8::");
    a.bytes[14] = static_cast<uint8_t>(i >> 8);
    a.bytes[15] = static_cast<uint8_t>(i);
    f.AddRemotePrefix(Cidr{a, 128});
  }
  auto prog = f.Build(AF_INET6);
  ASSERT_FALSE(prog.empty());
  EXPECT_LE(prog.size(), InetDiagFilter::kMaxBytes);
  ASSERT_TRUE(KernelAudit(prog));
  // Ports only: any peer on 443 passes (the userspace check trims), other ports do not.
  EXPECT_TRUE(KernelRun(prog, Make("[2001:db8::1]:443", "[2001:db9::1]:5")));
  EXPECT_FALSE(KernelRun(prog, Make("[2001:db8::1]:444", "[2001:db8::1]:5")));

  // 1500 fit (1500 * 32 + ports < 64 KiB): the program keeps them and stays verifiable.
  InetDiagFilter g;
  g.AddLocalPort(443);
  for (int i = 0; i < 1500; ++i) {
    IpAddress a = *IpAddress::Parse("2001:db8::");
    a.bytes[14] = static_cast<uint8_t>(i >> 8);
    a.bytes[15] = static_cast<uint8_t>(i);
    g.AddRemotePrefix(Cidr{a, 128});
  }
  auto big = g.Build(AF_INET6);
  ASSERT_GT(big.size(), 40000u);
  ASSERT_TRUE(KernelAudit(big));
  EXPECT_TRUE(KernelRun(big, Make("[2001:db8::1]:443", "[2001:db8::5dc]:5")) == false);  // 1500 = 0x5dc: not added
  EXPECT_TRUE(KernelRun(big, Make("[2001:db8::1]:443", "[2001:db8::5db]:5")));           // the last one added
  EXPECT_FALSE(KernelRun(big, Make("[2001:db8::1]:443", "[2001:db9::1]:5")));
}

TEST(InetDiagFilter, EmptyFilterBuildsNoProgram) {
  InetDiagFilter f;
  EXPECT_TRUE(f.Build(AF_INET).empty());
}

}  // namespace
}  // namespace headshift
