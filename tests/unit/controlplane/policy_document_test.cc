// PolicyDocument: HuJSON in (comments, trailing commas), standard JSON out; malformed text refused with
// its line, column and offset.
#include "controlplane/policy_document.h"

#include <gtest/gtest.h>

namespace headshift {
namespace {

TEST(PolicyDocumentTest, ParsesHuJsonCommentsAndTrailingCommas) {
  const char* text = R"(// tenants share this node
{
  /* per-user rules */
  "groups": {"group:hsa-admins": ["hsa@",],},
  "acls": [
    {"action": "accept", "src": ["hsa@"], "dst": ["hsa@:*"]}, // hsa
    {"action": "accept", "src": ["hsb@"], "dst": ["hsb@:*"]},
  ],
}
)";
  auto d = PolicyDocument::Parse(text, "node 3");
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_EQ(d->json()["acls"].size(), 2u);
  EXPECT_EQ(d->json()["groups"]["group:hsa-admins"][0], "hsa@");
  // Member order survives: the operator's reading order.
  EXPECT_EQ(d->json()["acls"][0].dump(), R"({"action":"accept","src":["hsa@"],"dst":["hsa@:*"]})");
  EXPECT_EQ(d->json().begin().key(), "groups");
}

TEST(PolicyDocumentTest, SerializesStandardJsonThatParsesBackToTheSamePolicy) {
  auto d = PolicyDocument::Parse("{\"acls\": [{\"action\": \"accept\", \"src\": [\"*\"], \"dst\": [\"*:*\"],},], // x\n}",
                                 "t");
  ASSERT_TRUE(d.ok());
  std::string out = d->ToJson();
  EXPECT_EQ(out.find("//"), std::string::npos);
  auto strict = nlohmann::json::parse(out, nullptr, false);  // strict JSON parser: no comments, no trailing commas
  ASSERT_FALSE(strict.is_discarded()) << out;
  auto again = PolicyDocument::Parse(out, "t2");
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->SameAs(*d));
}

TEST(PolicyDocumentTest, ErrorNamesLineColumnAndOffset) {
  auto d = PolicyDocument::Parse("{\n  \"acls\": [\n    {\"action\" \"accept\"}\n  ]\n}", "node 4 policy");
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.status().code(), ExitCode::kBadInput);
  const std::string& m = d.status().message();
  EXPECT_NE(m.find("node 4 policy"), std::string::npos) << m;
  // The missing ':' is found where "accept" starts: line 3, column 15, byte 28.
  EXPECT_NE(m.find("line 3, column 15 (offset 28)"), std::string::npos) << m;
  EXPECT_NE(m.find("Missing a colon"), std::string::npos) << m;
}

TEST(PolicyDocumentTest, UnterminatedCommentAndNonObjectAreRefused) {
  EXPECT_FALSE(PolicyDocument::Parse("{\"acls\": [] /* open", "t").ok());
  auto arr = PolicyDocument::Parse("[1, 2]", "t");
  ASSERT_FALSE(arr.ok());
  EXPECT_NE(arr.status().message().find("not a JSON object"), std::string::npos);
  EXPECT_FALSE(PolicyDocument::Parse("{} {}", "t").ok());  // trailing garbage
}

TEST(PolicyDocumentTest, EmptyTextIsTheEmptyPolicy) {
  auto d = PolicyDocument::Parse(" \n", "t");
  ASSERT_TRUE(d.ok());
  EXPECT_TRUE(d->json().is_object());
  EXPECT_TRUE(d->json().empty());
}

TEST(PolicyDocumentTest, SameAsIgnoresMemberOrderButNotRuleOrder) {
  auto a = PolicyDocument::Parse(R"({"acls":[{"action":"accept","src":["a@"],"dst":["a@:*"]},{"action":"accept","src":["b@"],"dst":["b@:*"]}]})", "a");
  auto b = PolicyDocument::Parse(R"({"acls":[{"dst":["a@:*"],"src":["a@"],"action":"accept"},{"action":"accept","src":["b@"],"dst":["b@:*"]}]})", "b");
  auto c = PolicyDocument::Parse(R"({"acls":[{"action":"accept","src":["b@"],"dst":["b@:*"]},{"action":"accept","src":["a@"],"dst":["a@:*"]}]})", "c");
  ASSERT_TRUE(a.ok() && b.ok() && c.ok());
  EXPECT_TRUE(a->SameAs(*b));
  EXPECT_FALSE(a->SameAs(*c));
}

}  // namespace
}  // namespace headshift
