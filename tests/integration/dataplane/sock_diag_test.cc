// The dataplane library against the real kernel: SockDiag dumps with InetDiagFilter bytecode,
// pipelined destroys, the cookie guard, namespace threads, and the C++ API the playbooks call
// (SnapshotSessions / KillSnapshot / KillSessions).
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <map>
#include <set>
#include <chrono>
#include <thread>

#include "dataplane/destroy_pipeline.h"
#include "dataplane/sessions.h"
#include "dataplane/sock_diag.h"
#include "tests/integration/dataplane/netns_lab.h"

namespace headshift::testing {
namespace {

constexpr uint16_t kP = 4451;
constexpr uint16_t kQ = 4452;
constexpr uint16_t kP4 = 4453;  // an IPv4-only listener

std::unique_ptr<SockDiag> OpenDiag(const TestNetns& ns, size_t destroy_channels = 1,
                                   int answer_queue_bytes = SockDiag::kAnswerQueueBytes) {
  std::unique_ptr<SockDiag> d;
  Status st = ns.netns().Run([&] {
    auto r = SockDiag::Open(destroy_channels, answer_queue_bytes);
    if (!r.ok()) return r.status();
    d = std::move(r).value();
    return Status::Ok();
  });
  if (!st.ok()) throw std::runtime_error(st.ToString());
  return d;
}

std::vector<DiagSocket> DumpAll(SockDiag& d, uint8_t family, const std::vector<uint8_t>& bytecode) {
  SockDiag::DumpRequest r;
  r.family = family;
  r.states = kLiveTcpStates;
  r.bytecode = bytecode;
  std::vector<DiagSocket> out;
  Status st = d.Dump(r, [&](const DiagSocket& s) { out.push_back(s); });
  EXPECT_TRUE(st.ok()) << st.ToString();
  return out;
}

// Kills the tenant 10.64.1.0/24 on port kP in `ns` with `opts`.
StatusOr<TerminationReport> KillTenant(const TestNetns& ns, const TerminatorOptions& opts) {
  SessionHost host{"lab", ns.name(), "", {kP}};
  auto t = SessionTable::Open(host, SessionTable::Access::kDestroy, opts);
  if (!t.ok()) return t.status();
  SessionSelector sel;
  sel.clients = {*ParseCidr("10.64.1.0/24")};
  return (*t)->Kill(sel, false);
}

// n connections from 10.64.1.1 to kP, and their server ends as the kernel dumps them.
struct DumpedConns {
  std::vector<Conn> conns;
  std::vector<DiagSocket> found;                // dump order
  std::map<std::string, size_t> by_client;      // client endpoint -> index in conns

  size_t IndexOf(const DiagSocket& s) const { return by_client.at(s.Remote().ToString()); }
  // Closes conns[i] client first, so its server end is gone (not in TIME_WAIT): a destroy of it
  // is answered "not found".
  void CloseFully(size_t i) {
    close(conns[i].client);
    conns[i].client = -1;
    EXPECT_EQ(AwaitError(conns[i].server), 0) << conns[i].label;
    Close(conns[i]);
  }
};

DumpedConns ConnectAndDump(const TestNetns& ns, int listener, size_t n, SockDiag& d) {
  DumpedConns out;
  for (size_t i = 0; i < n; ++i) {
    out.conns.push_back(Connect(ns, "10.64.1.1", "10.64.0.1", kP, listener, fmt::format("c{}", i)));
    out.by_client[ClientEndpoint(out.conns.back())] = i;
  }
  SessionSelector sel;
  sel.ports = {kP};
  sel.clients = {*ParseCidr("10.64.1.1")};
  auto found = SessionTerminator(&d).Select(SocketQuery::ForSelector(sel));
  EXPECT_TRUE(found.ok()) << found.status().ToString();
  if (found.ok()) out.found = std::move(found).value();
  return out;
}

uint64_t ThreadNetnsInode() {
  struct stat st {};
  stat("/proc/thread-self/ns/net", &st);
  return st.st_ino;
}

class SockDiagTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { RemoveStaleTestNetns(); }
  void SetUp() override {
    ns_ = std::make_unique<TestNetns>("d");
    for (const char* a : {"10.64.0.1/32", "10.64.1.1/32", "10.64.1.2/32", "10.64.2.1/32", "fd00:64::1/128",
                          "fd00:64:1::1/128", "fd00:64:2::1/128"}) {
      ns_->AddLoopbackAddress(a);
    }
  }
  void TearDown() override { ns_.reset(); }
  std::unique_ptr<TestNetns> ns_;
};

TEST_F(SockDiagTest, NamespaceThreadNeverMovesTheCaller) {
  uint64_t before = ThreadNetnsInode();
  uint64_t inside = 0;
  ASSERT_TRUE(ns_->netns().Run([&] {
    inside = ThreadNetnsInode();
    return Status::Ok();
  }).ok());
  EXPECT_EQ(inside, ns_->netns().inode());
  EXPECT_NE(inside, before);
  EXPECT_EQ(ThreadNetnsInode(), before);
  auto own = Netns::Open("");
  ASSERT_TRUE(own.ok());
  EXPECT_EQ(own->inode(), before);
}

TEST_F(SockDiagTest, KernelRunsTheBytecodeExactlyLikeTheExactCheck) {
  int l = Listen(*ns_, "::", kP, /*dual_stack=*/true);
  int lq = Listen(*ns_, "::", kQ, /*dual_stack=*/true);
  int l4 = Listen(*ns_, "10.64.0.1", kP4);
  std::vector<Conn> conns = {
      Connect(*ns_, "fd00:64:1::1", "fd00:64::1", kP, l, "tenant-v6"),
      Connect(*ns_, "10.64.1.1", "10.64.0.1", kP, l, "tenant-mapped"),
      Connect(*ns_, "fd00:64:2::1", "fd00:64::1", kP, l, "other-v6"),
      Connect(*ns_, "10.64.2.1", "10.64.0.1", kP, l, "other-mapped"),
      Connect(*ns_, "10.64.1.1", "10.64.0.1", kQ, lq, "tenant-other-port"),
      Connect(*ns_, "10.64.1.2", "10.64.0.1", kP4, l4, "tenant-v4"),
      Connect(*ns_, "10.64.2.1", "10.64.0.1", kP4, l4, "other-v4"),
  };
  auto d = OpenDiag(*ns_);
  SessionSelector sel;
  sel.ports = {kP, kP4};
  sel.clients = {*ParseCidr("10.64.1.0/24"), *ParseCidr("fd00:64:1::/64")};
  auto remotes = [](const std::vector<DiagSocket>& v) {
    std::set<std::string> s;
    for (const auto& x : v) s.insert(x.Remote().ToString());
    return s;
  };
  // The kernel itself filters with our program: per family, and both families in one walk.
  EXPECT_EQ(remotes(DumpAll(*d, AF_INET6, sel.Filter().Build(AF_INET6))),
            (std::set<std::string>{ClientEndpoint(conns[0]), ClientEndpoint(conns[1])}));
  EXPECT_EQ(remotes(DumpAll(*d, AF_INET, sel.Filter().Build(AF_INET))), std::set<std::string>{ClientEndpoint(conns[5])});
  std::set<std::string> expected = {ClientEndpoint(conns[0]), ClientEndpoint(conns[1]), ClientEndpoint(conns[5])};
  EXPECT_EQ(remotes(DumpAll(*d, AF_UNSPEC, sel.Filter().Build(AF_UNSPEC))), expected);
  std::set<std::string> got;

  // A program near the 64 KiB limit (1500 IPv6 /128s + the tenant prefixes) is accepted too.
  SessionSelector big = sel;
  for (int i = 0; i < 1500; ++i) {
    IpAddress a = *IpAddress::Parse("2001:db8::");
    a.bytes[14] = static_cast<uint8_t>(i >> 8);
    a.bytes[15] = static_cast<uint8_t>(i);
    big.clients.push_back(Cidr{a, 128});
  }
  auto prog = big.Filter().Build(AF_UNSPEC);
  ASSERT_GT(prog.size(), 40000u);
  EXPECT_EQ(remotes(DumpAll(*d, AF_UNSPEC, prog)), expected);

  // Beyond the limit the program falls back to ports; SessionTerminator's exact check still trims.
  for (int i = 1500; i < 4000; ++i) {
    IpAddress a = *IpAddress::Parse("2001:db8::");
    a.bytes[14] = static_cast<uint8_t>(i >> 8);
    a.bytes[15] = static_cast<uint8_t>(i);
    big.clients.push_back(Cidr{a, 128});
  }
  SessionTerminator term(d.get());
  auto selected = term.Select(SocketQuery::ForSelector(big));
  ASSERT_TRUE(selected.ok()) << selected.status().ToString();
  got.clear();
  for (const auto& s : *selected) got.insert(s.Remote().ToString());
  EXPECT_EQ(got, expected);

  EXPECT_TRUE(d->CheckDestroySupported().ok());
  for (auto& c : conns) EXPECT_EQ(Exchange(c), "") << c.label << ": dumps and the probe touch nothing";
  for (auto& c : conns) Close(c);
  close(l);
  close(lq);
  close(l4);
}

TEST_F(SockDiagTest, StaleIdWithCookieNeverHitsTheListener) {
  int l = Listen(*ns_, "10.64.0.1", kP);
  Conn c = Connect(*ns_, "10.64.1.1", "10.64.0.1", kP, l, "short-lived");
  auto d = OpenDiag(*ns_);
  SessionSelector sel;
  sel.ports = {kP};
  sel.clients = {*ParseCidr("10.64.1.1")};
  SessionTerminator term(d.get());
  auto before = term.Select(SocketQuery::ForSelector(sel));
  ASSERT_TRUE(before.ok());
  ASSERT_EQ(before->size(), 1u);
  // The connection ends (client first, so the server side is gone, not in TIME_WAIT). Its tuple
  // now resolves to the listener in the kernel's lookup; the cookie must make that a miss.
  close(c.client);
  c.client = -1;
  ASSERT_EQ(AwaitError(c.server), 0);
  Close(c);
  auto errs = d->DestroyBatch(*before);
  ASSERT_TRUE(errs.ok()) << errs.status().ToString();
  EXPECT_TRUE((*errs)[0] == ESTALE || (*errs)[0] == ENOENT) << "errno " << (*errs)[0];
  EXPECT_EQ(ListenerAccepts(*ns_, "10.64.1.1", "10.64.0.1", kP, l), "");
  close(l);
}

TEST_F(SockDiagTest, KillSessionsPipelinesHundredsOfDestroys) {
  int l = Listen(*ns_, "10.64.0.1", kP);
  std::vector<Conn> tenant, others;
  for (int i = 0; i < 600; ++i) {
    tenant.push_back(Connect(*ns_, i % 2 ? "10.64.1.1" : "10.64.1.2", "10.64.0.1", kP, l, fmt::format("t{}", i)));
  }
  for (int i = 0; i < 100; ++i) others.push_back(Connect(*ns_, "10.64.2.1", "10.64.0.1", kP, l, fmt::format("o{}", i)));
  SessionHost host{"lab", ns_->name(), "", {kP}};
  SessionSelector sel;
  sel.clients = {*ParseCidr("10.64.1.0/24")};

  auto dry = KillSessions(host, sel, /*dry_run=*/true);
  ASSERT_TRUE(dry.ok()) << dry.status().ToString();
  EXPECT_EQ(dry->selected, 600u);
  EXPECT_EQ(dry->reset, 0u);

  auto rep = KillSessions(host, sel, /*dry_run=*/false);
  ASSERT_TRUE(rep.ok()) << rep.status().ToString();
  EXPECT_EQ(rep->selected, 600u);
  EXPECT_EQ(rep->reset, 600u);
  EXPECT_EQ(rep->failed, 0u);
  EXPECT_EQ(rep->remaining, 0u);
  EXPECT_EQ(rep->host, "lab");
  auto j = rep->ToJson();
  EXPECT_EQ(j["reset"], 600);
  EXPECT_EQ(rep->sockets.size(), 600u);
  int reset = 0;
  for (auto& c : tenant) reset += AwaitError(c.client) == ECONNRESET;
  EXPECT_EQ(reset, 600);
  for (auto& c : others) EXPECT_EQ(Exchange(c), "") << c.label;
  for (auto* v : {&tenant, &others}) {
    for (auto& c : *v) Close(c);
  }
  close(l);
}


// Destroys carry no NLM_F_ACK: only failures are answered, and the batch's closing NOOP tells when
// all answers are in. Every answer must land on its own request, across batch boundaries.
TEST_F(SockDiagTest, DestroyAnswersOnlyFailuresEachOnItsOwnRequest) {
  int l = Listen(*ns_, "10.64.0.1", kP);
  const size_t n = SockDiag::kDestroyBatch + 144;  // two batches
  auto d = OpenDiag(*ns_);
  DumpedConns c = ConnectAndDump(*ns_, l, n, *d);
  ASSERT_EQ(c.found.size(), n);
  // Every 7th connection closes, so the kernel answers "not found" for exactly those requests, on
  // both sides of the batch boundary.
  std::set<size_t> closed;
  for (size_t i = 0; i < n; i += 7) {
    c.CloseFully(i);
    closed.insert(i);
  }
  auto errs = d->DestroyBatch(c.found);
  ASSERT_TRUE(errs.ok()) << errs.status().ToString();
  size_t gone = 0, reset = 0;
  for (size_t k = 0; k < n; ++k) {
    size_t i = c.IndexOf(c.found[k]);
    if (closed.count(i)) {
      EXPECT_TRUE((*errs)[k] == ENOENT || (*errs)[k] == ESTALE) << c.conns[i].label << ": errno " << (*errs)[k];
      ++gone;
    } else {
      EXPECT_EQ((*errs)[k], 0) << c.conns[i].label;
      EXPECT_EQ(AwaitError(c.conns[i].client), ECONNRESET) << c.conns[i].label;
      ++reset;
    }
  }
  EXPECT_EQ(gone, closed.size());
  EXPECT_EQ(reset, n - closed.size());
  for (auto& conn : c.conns) Close(conn);
  close(l);
}

// When failures overflow a destroy channel's receive queue the kernel drops answers (ENOBUFS), and
// then no answer does not mean "reset": every unanswered request of the batch comes back as
// kAnswerLost, never as 0, while the answered failures keep their errno. The sockets were in fact
// reset, which is why the terminator lets its confirming dump decide instead of counting them failed.
TEST_F(SockDiagTest, DroppedAnswersAreReportedLostNotReset) {
  int l = Listen(*ns_, "10.64.0.1", kP);
  const size_t n = 160;
  auto d = OpenDiag(*ns_, 1, /*answer_queue_bytes=*/1);  // the kernel's minimum: a few answers fit
  DumpedConns c = ConnectAndDump(*ns_, l, n, *d);
  ASSERT_EQ(c.found.size(), n);
  // The first 120 in dump order close, so their "not found" answers overflow the queue before
  // the last 40 are destroyed.
  std::set<size_t> closed;
  for (size_t k = 0; k < 120; ++k) {
    closed.insert(c.IndexOf(c.found[k]));
    c.CloseFully(c.IndexOf(c.found[k]));
  }
  auto errs = d->DestroyBatch(c.found);
  ASSERT_TRUE(errs.ok()) << errs.status().ToString();
  size_t lost = 0, answered_gone = 0;
  for (size_t k = 0; k < n; ++k) {
    size_t i = c.IndexOf(c.found[k]);
    int e = (*errs)[k];
    EXPECT_NE(e, 0) << c.conns[i].label << ": reported reset although the answers were dropped";
    if (closed.count(i)) {
      EXPECT_TRUE(e == ENOENT || e == ESTALE || e == SockDiag::kAnswerLost) << c.conns[i].label << ": errno " << e;
      answered_gone += e != SockDiag::kAnswerLost;
    } else {
      EXPECT_EQ(e, SockDiag::kAnswerLost) << c.conns[i].label;
      EXPECT_EQ(AwaitError(c.conns[i].client), ECONNRESET) << c.conns[i].label << ": the destroy itself took";
    }
    lost += e == SockDiag::kAnswerLost;
  }
  EXPECT_GE(lost, n - closed.size());
  EXPECT_GT(answered_gone, 0u) << "the answers that fitted are read";
  for (auto& conn : c.conns) Close(conn);
  close(l);
}

// The pipeline resets on three channels while the dump that feeds it is still being read; every
// answer comes back once, in the order added, and nobody else is touched.
TEST_F(SockDiagTest, DestroyPipelineResetsWhileTheDumpIsRead) {
  int l = Listen(*ns_, "10.64.0.1", kP);
  std::vector<Conn> tenant, others;
  for (int i = 0; i < 1200; ++i) {
    tenant.push_back(Connect(*ns_, i % 2 ? "10.64.1.1" : "10.64.1.2", "10.64.0.1", kP, l, fmt::format("t{}", i)));
  }
  for (int i = 0; i < 50; ++i) others.push_back(Connect(*ns_, "10.64.2.1", "10.64.0.1", kP, l, fmt::format("o{}", i)));
  auto d = OpenDiag(*ns_, 3);
  ASSERT_EQ(d->destroy_channels(), 3u);
  SessionSelector sel;
  sel.ports = {kP};
  sel.clients = {*ParseCidr("10.64.1.0/24")};
  SocketQuery q = SocketQuery::ForSelector(sel);
  DestroyPipeline pipe(d.get());
  std::vector<uint64_t> order;
  for (const auto& r : q.dumps) {
    ASSERT_TRUE(d->Dump(r, [&](const DiagSocket& s) {
                   if (!q.selects(s)) return;
                   order.push_back(s.Cookie());
                   pipe.Add(s);
                 }).ok());
  }
  // A walk that resets as it goes may skip a socket; the count is checked after the re-dump.
  auto answers = pipe.Finish();
  ASSERT_TRUE(answers.ok()) << answers.status().ToString();
  ASSERT_EQ(answers->size(), order.size());
  std::set<uint64_t> cookies;
  for (size_t i = 0; i < answers->size(); ++i) {
    EXPECT_EQ((*answers)[i].socket.Cookie(), order[i]);
    EXPECT_EQ((*answers)[i].error, 0);
    cookies.insert(order[i]);
  }
  EXPECT_EQ(cookies.size(), order.size()) << "a socket was destroyed twice";
  SessionTerminator term(d.get());
  auto left = term.Select(q);
  ASSERT_TRUE(left.ok());
  EXPECT_EQ(left->size() + order.size(), tenant.size());
  int reset = 0;
  for (auto& c : tenant) reset += AwaitError(c.client, 100) == ECONNRESET;
  EXPECT_EQ(static_cast<size_t>(reset), order.size());
  for (auto& c : others) EXPECT_EQ(Exchange(c), "") << c.label;
  for (auto* v : {&tenant, &others}) {
    for (auto& c : *v) Close(c);
  }
  close(l);
}

// With no destroy rounds allowed, everything selected is reported as remaining and nothing is reset.
TEST_F(SockDiagTest, ZeroRoundsReportsRemainingAndResetsNothing) {
  int l = Listen(*ns_, "10.64.0.1", kP);
  std::vector<Conn> tenant;
  for (int i = 0; i < 300; ++i) tenant.push_back(Connect(*ns_, "10.64.1.1", "10.64.0.1", kP, l, fmt::format("t{}", i)));
  TerminatorOptions opts;
  opts.max_rounds = 0;
  auto rep = KillTenant(*ns_, opts);
  ASSERT_TRUE(rep.ok()) << rep.status().ToString();
  EXPECT_EQ(rep->selected, 300u);
  EXPECT_EQ(rep->remaining, 300u);
  EXPECT_EQ(rep->reset, 0u);
  for (auto& c : tenant) EXPECT_EQ(Exchange(c), "") << c.label;
  for (auto& c : tenant) Close(c);
  close(l);
}

// Paced resets: 300 sessions at 1,000 per second go in waves of 10 (one per 10 ms tick); every
// session is still reset, nobody else touched.
TEST_F(SockDiagTest, PacedKillResetsInWavesAndStillResetsEverySession) {
  int l = Listen(*ns_, "10.64.0.1", kP);
  std::vector<Conn> tenant, others;
  for (int i = 0; i < 300; ++i) tenant.push_back(Connect(*ns_, "10.64.1.1", "10.64.0.1", kP, l, fmt::format("t{}", i)));
  for (int i = 0; i < 20; ++i) others.push_back(Connect(*ns_, "10.64.2.1", "10.64.0.1", kP, l, fmt::format("o{}", i)));
  TerminatorOptions opts;
  opts.resets_per_second = 1000;
  auto rep = KillTenant(*ns_, opts);
  ASSERT_TRUE(rep.ok()) << rep.status().ToString();
  EXPECT_EQ(rep->selected, 300u);
  EXPECT_EQ(rep->reset, 300u);
  EXPECT_EQ(rep->remaining, 0u);
  // 1,000/s in 10 ms ticks: waves of 10, so 30 of them.
  EXPECT_EQ(rep->waves, 30);
  EXPECT_EQ(rep->ToJson().value("waves", 0), 30);
  int reset = 0;
  for (auto& c : tenant) reset += AwaitError(c.client) == ECONNRESET;
  EXPECT_EQ(reset, 300);
  for (auto& c : others) EXPECT_EQ(Exchange(c), "") << c.label;
  for (auto* v : {&tenant, &others}) {
    for (auto& c : *v) Close(c);
  }
  close(l);
}

// Paced, the confirming dump retries only the first selection: clients of the first waves that
// reconnect while later waves are still being reset keep their new sessions.
TEST_F(SockDiagTest, PacedKillSparesClientsThatReconnectedDuringIt) {
  int l = Listen(*ns_, "10.64.0.1", kP);
  std::vector<Conn> tenant, fresh;
  for (int i = 0; i < 200; ++i) tenant.push_back(Connect(*ns_, "10.64.1.1", "10.64.0.1", kP, l, fmt::format("t{}", i)));
  std::vector<int> first_errors;
  std::thread reconnect([&] {
    // Waves go in dump order, not creation order: wait for any 10 clients to be reset.
    size_t seen = 0;
    std::vector<bool> done(tenant.size(), false);
    for (int pass = 0; pass < 300 && seen < 10; ++pass) {
      for (size_t i = 0; i < tenant.size() && seen < 10; ++i) {
        if (done[i]) continue;
        int e = AwaitError(tenant[i].client, 0);
        if (e == ECONNRESET) {
          done[i] = true;
          ++seen;
          fresh.push_back(Connect(*ns_, "10.64.1.1", "10.64.0.1", kP, l, "fresh" + std::to_string(seen)));
        }
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  });
  TerminatorOptions opts;
  opts.resets_per_second = 500;  // 200 sessions: 40 waves of 5, one per 10 ms
  auto rep = KillTenant(*ns_, opts);
  reconnect.join();
  ASSERT_TRUE(rep.ok()) << rep.status().ToString();
  ASSERT_EQ(fresh.size(), 10u) << "the test did not see the first waves";
  EXPECT_EQ(rep->selected, 200u);
  EXPECT_EQ(rep->reset, 200u);
  EXPECT_GE(rep->rounds, 2) << "no confirming dump ran";
  EXPECT_EQ(rep->waves, 40);
  for (auto& c : fresh) EXPECT_EQ(Exchange(c), "") << c.label << " was reset again";
  for (auto* v : {&tenant, &fresh}) {
    for (auto& c : *v) Close(c);
  }
  close(l);
}

TEST_F(SockDiagTest, SnapshotApiSparesConnectionsMadeAfterIt) {
  int l = Listen(*ns_, "10.64.0.1", kP);
  Conn old1 = Connect(*ns_, "10.64.1.1", "10.64.0.1", kP, l, "old1");
  Conn old2 = Connect(*ns_, "10.64.1.2", "10.64.0.1", kP, l, "old2");
  Conn other = Connect(*ns_, "10.64.2.1", "10.64.0.1", kP, l, "other");
  SessionHost host{"lab", ns_->name(), "", {kP}};
  auto snap = SnapshotSessions(host, {*ParseCidr("10.64.1.0/24")});
  ASSERT_TRUE(snap.ok()) << snap.status().ToString();
  EXPECT_EQ(snap->sockets.size(), 2u);
  EXPECT_EQ(snap->netns_inode, ns_->netns().inode());
  EXPECT_FALSE(snap->boot_id.empty());
  Conn fresh = Connect(*ns_, "10.64.1.1", "10.64.0.1", kP, l, "fresh");

  // Round-trip through JSON, as the playbooks' journal stores it.
  auto back = SessionSnapshot::FromJson(snap->ToJson());
  ASSERT_TRUE(back.ok());
  auto rep = KillSnapshot(host, *back);
  ASSERT_TRUE(rep.ok()) << rep.status().ToString();
  EXPECT_EQ(rep->selected, 2u);
  EXPECT_EQ(rep->reset, 2u);
  EXPECT_EQ(AwaitError(old1.client), ECONNRESET);
  EXPECT_EQ(AwaitError(old2.client), ECONNRESET);
  EXPECT_EQ(Exchange(fresh), "");
  EXPECT_EQ(Exchange(other), "");

  SessionHost wrong{"lab", "hsdp" + std::to_string(getpid()) + "gone", "", {kP}};
  auto missing = KillSnapshot(wrong, *snap);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), ExitCode::kBadInput);
  for (Conn* c : {&old1, &old2, &other, &fresh}) Close(*c);
  close(l);
}

}  // namespace
}  // namespace headshift::testing
