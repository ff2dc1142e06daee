// TerminationReport's output forms: the streamed sockets array (RapidJSON) must describe each socket
// exactly as a snapshot file does (SocketToJson, nlohmann), the text form one line per socket; and
// how destroy answers decide each socket's outcome.
#include <gtest/gtest.h>
#include <netinet/in.h>

#include <cerrno>
#include <cstring>

#include <nlohmann/json.hpp>

#include "dataplane/sock_diag.h"
#include "dataplane/termination_report.h"

namespace headshift {
namespace {

TerminationReport SampleReport(const std::string& host) {
  TerminationReport r;
  r.host = host;
  auto v4 = DiagSocket::FromParts(AF_INET, 1, *InetEndpoint::Parse("10.0.0.1:443"), *InetEndpoint::Parse("10.99.0.7:40001"),
                                  0x1234567890ull, 0);
  auto v6 = DiagSocket::FromParts(AF_INET6, 1, *InetEndpoint::Parse("[::ffff:10.0.0.1]:443"),
                                  *InetEndpoint::Parse("[::ffff:10.99.0.8]:40002"), 18446744073709551615ull, 0);
  auto v6b = DiagSocket::FromParts(AF_INET6, 8, *InetEndpoint::Parse("[fd00::1]:443"),
                                   *InetEndpoint::Parse("[fd00:99::2]:50000"), 7, 0);
  r.sockets.push_back({v4, SessionOutcome::kReset, 0});
  r.sockets.push_back({v6, SessionOutcome::kGone, ENOENT});
  r.sockets.push_back({v6b, SessionOutcome::kFailed, EPERM});
  r.Recount();
  return r;
}

TEST(TerminationReportTest, StreamedSocketsArrayMatchesTheSnapshotFormOfEachSocket) {
  TerminationReport a = SampleReport("proxy-a"), b = SampleReport("");
  std::string out = "prefix:";
  AppendSocketsJsonArray({&a, &b}, out);
  ASSERT_EQ(out.rfind("prefix:", 0), 0u);
  nlohmann::json streamed = nlohmann::json::parse(out.substr(7));
  ASSERT_TRUE(streamed.is_array());
  ASSERT_EQ(streamed.size(), 6u);
  size_t i = 0;
  for (const auto* r : {&a, &b}) {
    for (const auto& rec : r->sockets) {
      nlohmann::json s = SocketToJson(rec.socket);  // the snapshot file's form of a socket
      s["outcome"] = SessionOutcomeName(rec.outcome);
      if (rec.error != 0) s["error"] = std::strerror(rec.error);
      s["host"] = r->host;
      EXPECT_EQ(streamed[i], s) << "socket " << i;
      ++i;
    }
  }
  EXPECT_EQ(streamed[0]["cookie"].get<uint64_t>(), 0x1234567890ull);
  EXPECT_EQ(streamed[1]["cookie"].get<uint64_t>(), 18446744073709551615ull);
  EXPECT_EQ(streamed[1]["error"], std::strerror(ENOENT));
  EXPECT_FALSE(streamed[0].contains("error"));
  EXPECT_EQ(streamed[2]["remote"], "[fd00:99::2]:50000");
  EXPECT_EQ(streamed[3]["host"], "");
}

TEST(TerminationReportTest, EmptyReportsStreamAnEmptyArray) {
  TerminationReport r;
  std::string out;
  AppendSocketsJsonArray({&r}, out);
  EXPECT_EQ(out, "[]");
}

TEST(TerminationReportTest, TextHasOneLinePerSocketAndTheCounts) {
  TerminationReport r = SampleReport("h");
  std::string text = "before\n";
  r.AppendText(text);
  EXPECT_EQ(text.rfind("before\n", 0), 0u);
  EXPECT_NE(text.find("inet  10.0.0.1:443  10.99.0.7:40001  ESTABLISHED  cookie=78187493520  reset\n"), std::string::npos)
      << text;
  EXPECT_NE(text.find("[fd00:99::2]:50000"), std::string::npos);
  EXPECT_NE(text.find("failed (" + std::string(std::strerror(EPERM)) + ")"), std::string::npos);
  EXPECT_NE(text.find("selected 3, reset 1, gone 1, failed 1\n"), std::string::npos) << text;
  EXPECT_EQ(r.ToText(), text.substr(7));
}

// The outcome a socket ends with after one or more destroy answers across rounds.
SessionOutcome AfterAnswers(std::initializer_list<int> errs, int* error = nullptr) {
  SessionRecord r;
  for (int e : errs) r.ApplyDestroyAnswer(e);
  if (error) *error = r.error;
  return r.outcome;
}

TEST(TerminationReportTest, DestroyAnswersDecideTheOutcome) {
  int error = -1;
  EXPECT_EQ(AfterAnswers({0}, &error), SessionOutcome::kReset);
  EXPECT_EQ(error, 0);
  EXPECT_EQ(AfterAnswers({ENOENT}, &error), SessionOutcome::kGone);
  EXPECT_EQ(error, ENOENT);
  EXPECT_EQ(AfterAnswers({ESTALE}), SessionOutcome::kGone);
  EXPECT_EQ(AfterAnswers({EPERM}, &error), SessionOutcome::kFailed);
  EXPECT_EQ(error, EPERM);
  EXPECT_EQ(AfterAnswers({EOPNOTSUPP}), SessionOutcome::kFailed);
  // Reset in one round, reported again by a later walk and answered "not found": still reset.
  EXPECT_EQ(AfterAnswers({0, ENOENT}, &error), SessionOutcome::kReset);
  EXPECT_EQ(error, 0);
  // A lost answer is not a failure: the confirming dump decides. If it no longer shows the socket
  // no further answer comes and the socket counts as reset; if it does, the next answer decides.
  EXPECT_EQ(AfterAnswers({SockDiag::kAnswerLost}, &error), SessionOutcome::kReset);
  EXPECT_EQ(error, 0);
  EXPECT_EQ(AfterAnswers({SockDiag::kAnswerLost, EPERM}), SessionOutcome::kFailed);
  EXPECT_EQ(AfterAnswers({SockDiag::kAnswerLost, ENOENT}), SessionOutcome::kReset);
  EXPECT_EQ(AfterAnswers({EPERM, 0}), SessionOutcome::kReset);
}

}  // namespace
}  // namespace headshift
