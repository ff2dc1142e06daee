#include "dataplane/session_snapshot.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include "dataplane/tcp_state.h"
#include "dataplane/termination_report.h"
#include "tests/fixtures/cli_runner.h"

namespace headshift {
namespace {

SessionSnapshot Sample() {
  SessionSnapshot s;
  s.host = "edge";
  s.netns = "edge-ns";
  s.netns_inode = 4026532000ull;
  s.boot_id = "0f8e2c1a-0000-4000-8000-000000000001";
  s.ports = {443, 8443};
  s.clients = {"10.20.0.0/16", "2001:db8:1::/48"};
  s.taken_at_ms = 1767225600123;  // 2026-01-01T00:00:00.123Z
  s.sockets.push_back(DiagSocket::FromParts(AF_INET, kTcpEstablished, *InetEndpoint::Parse("10.0.0.1:443"),
                                            *InetEndpoint::Parse("10.20.1.2:50000"), 4129, 0));
  s.sockets.push_back(DiagSocket::FromParts(AF_INET6, kTcpCloseWait, *InetEndpoint::Parse("[::ffff:10.0.0.1]:8443"),
                                            *InetEndpoint::Parse("[::ffff:10.20.1.3]:50001"), (7ull << 32) | 5, 3));
  s.sockets.push_back(DiagSocket::FromParts(AF_INET6, kTcpEstablished, *InetEndpoint::Parse("[2001:db8::1]:443"),
                                            *InetEndpoint::Parse("[2001:db8:1::9]:40000"), 99, 0));
  return s;
}

void ExpectSameSockets(const std::vector<DiagSocket>& a, const std::vector<DiagSocket>& b) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].family, b[i].family);
    EXPECT_EQ(a[i].state, b[i].state);
    EXPECT_EQ(0, std::memcmp(&a[i].id, &b[i].id, sizeof a[i].id)) << "socket " << i;  // exact id incl. cookie
  }
}

TEST(SessionSnapshot, JsonRoundTripKeepsExactSocketIds) {
  SessionSnapshot s = Sample();
  nlohmann::json j = s.ToJson();
  EXPECT_EQ(j["taken_at"], "2026-01-01T00:00:00.123Z");
  EXPECT_EQ(j["sockets"][1]["cookie"], (7ull << 32) | 5);
  EXPECT_EQ(j["sockets"][1]["local"], "[::ffff:10.0.0.1]:8443");
  EXPECT_EQ(j["sockets"][1]["state"], "CLOSE_WAIT");
  auto back = SessionSnapshot::FromJson(j);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->host, s.host);
  EXPECT_EQ(back->netns_inode, s.netns_inode);
  EXPECT_EQ(back->boot_id, s.boot_id);
  EXPECT_EQ(back->ports, s.ports);
  EXPECT_EQ(back->taken_at_ms, s.taken_at_ms);
  ExpectSameSockets(back->sockets, s.sockets);
}

TEST(SessionSnapshot, FileIsWrittenAtomicallyPrivateAndReadsBack) {
  std::string path = testing::WriteTempFile("snap/placeholder", "") ;
  path = path.substr(0, path.rfind('/')) + "/sessions.json";
  ASSERT_TRUE(SaveSnapshots(path, {Sample(), Sample()}).ok());
  struct stat st {};
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  auto back = LoadSnapshots(path);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  ASSERT_EQ(back->size(), 2u);
  ExpectSameSockets((*back)[1].sockets, Sample().sockets);
}

TEST(SessionSnapshot, RejectsFilesThatAreNotSnapshots) {
  auto missing = LoadSnapshots("/nonexistent/hsdp-snapshot.json");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), ExitCode::kBadInput);
  EXPECT_NE(missing.status().message().find("/nonexistent/hsdp-snapshot.json"), std::string::npos);

  auto garbage = LoadSnapshots(testing::WriteTempFile("garbage.json", "{not json"));
  EXPECT_EQ(garbage.status().code(), ExitCode::kBadInput);
  auto other = LoadSnapshots(testing::WriteTempFile("other.json", R"({"format":"something-else"})"));
  EXPECT_EQ(other.status().code(), ExitCode::kBadInput);

  nlohmann::json doc = {{"format", "headshift-session-snapshot"}, {"version", 1}, {"snapshots", {Sample().ToJson()}}};
  doc["snapshots"][0]["sockets"][0]["local"] = "10.0.0.1";  // no port
  auto bad_socket = LoadSnapshots(testing::WriteTempFile("bad_socket.json", doc.dump()));
  ASSERT_FALSE(bad_socket.ok());
  EXPECT_EQ(bad_socket.status().code(), ExitCode::kBadInput);
  doc["snapshots"][0]["sockets"][0]["local"] = "10.0.0.1:443";
  doc["snapshots"][0]["sockets"][0]["state"] = "LISTENING";
  EXPECT_EQ(LoadSnapshots(testing::WriteTempFile("bad_state.json", doc.dump())).status().code(), ExitCode::kBadInput);
  doc["snapshots"][0]["sockets"][0]["state"] = "ESTABLISHED";
  doc["version"] = 2;
  EXPECT_EQ(LoadSnapshots(testing::WriteTempFile("bad_version.json", doc.dump())).status().code(), ExitCode::kBadInput);
  // Fields of the wrong type are bad input too (json::value() would throw on them).
  doc["version"] = "1";
  EXPECT_EQ(LoadSnapshots(testing::WriteTempFile("string_version.json", doc.dump())).status().code(), ExitCode::kBadInput);
  doc["version"] = 1;
  doc["format"] = 5;
  EXPECT_EQ(LoadSnapshots(testing::WriteTempFile("number_format.json", doc.dump())).status().code(), ExitCode::kBadInput);
}

TEST(TerminationReport, JsonCountsFollowOutcomes) {
  TerminationReport r;
  r.host = "edge";
  auto s = Sample().sockets;
  r.sockets = {{s[0], SessionOutcome::kReset, 0}, {s[1], SessionOutcome::kGone, ENOENT}, {s[2], SessionOutcome::kFailed, EPERM}};
  r.Recount();
  nlohmann::json j = r.ToJson();
  EXPECT_EQ(j["selected"], 3);
  EXPECT_EQ(j["reset"], 1);
  EXPECT_EQ(j["gone"], 1);
  EXPECT_EQ(j["failed"], 1);
  EXPECT_EQ(j["host"], "edge");
  EXPECT_FALSE(j.contains("sockets")) << "sockets are streamed by AppendSocketsJsonArray";
  std::string arr;
  AppendSocketsJsonArray({&r}, arr);
  auto socks = nlohmann::json::parse(arr);
  EXPECT_EQ(socks[0]["outcome"], "reset");
  EXPECT_EQ(socks[0]["family"], "inet");
  EXPECT_EQ(socks[0]["remote"], "10.20.1.2:50000");
  EXPECT_EQ(socks[0]["cookie"], 4129);
  EXPECT_EQ(socks[2]["error"], std::strerror(EPERM));
  TerminationReport total;
  total.Merge(r);
  total.Merge(r);
  EXPECT_EQ(total.selected, 6u);
  EXPECT_EQ(total.reset, 2u);
}

}  // namespace
}  // namespace headshift
