// TenantPolicySplitter: the tenant's part of a multi-tenant policy is found, merged into another node's
// policy and removed from the source, idempotently; what cannot be split is refused by name.
#include "controlplane/tenant_policy.h"

#include <gtest/gtest.h>

#include "controlplane/policy_diff.h"

namespace headshift {
namespace {

PolicyDocument Doc(const std::string& text) {
  auto d = PolicyDocument::Parse(text, "test");
  EXPECT_TRUE(d.ok()) << d.status().ToString();
  return d.ok() ? *d : PolicyDocument();
}

TenantPrincipals Hsa() { return TenantPrincipals{{"hsa"}, {"hsb", "hsc"}}; }

// Node 3 of the lab: hsa and hsc, each with per-user rules, a group, a tagged server, a host.
const char* kNode3 = R"({
  "groups": {"group:hsa-admins": ["hsa@"], "group:hsc-ops": ["hsc@"]},
  "hosts": {"hsa-db": "100.64.3.50/32", "shared-dns": "100.64.3.53/32"},
  "tagOwners": {"tag:hsa-srv": ["hsa@"], "tag:hsc-srv": ["group:hsc-ops"]},
  "acls": [
    {"action": "accept", "src": ["hsa@"], "dst": ["hsa@:*"]},
    {"action": "accept", "src": ["hsc@"], "dst": ["hsc@:*"]},
    {"action": "accept", "src": ["group:hsa-admins"], "dst": ["tag:hsa-srv:22,443", "hsa-db:5432"]},
    {"action": "accept", "src": ["hsa@"], "dst": ["shared-dns:53"]},
    {"action": "accept", "src": ["hsc@"], "dst": ["shared-dns:53", "tag:hsc-srv:*"]},
    {"action": "accept", "src": ["autogroup:member"], "dst": ["autogroup:self:*"]},
  ],
  "grants": [{"src": ["hsa@"], "dst": ["tag:hsa-srv"], "ip": ["tcp:8080"]}],
  "ssh": [
    {"action": "accept", "src": ["group:hsa-admins"], "dst": ["tag:hsa-srv"], "users": ["root"]},
    {"action": "accept", "src": ["hsc@"], "dst": ["autogroup:self"], "users": ["autogroup:nonroot"]},
  ],
  "autoApprovers": {
    "routes": {"10.3.0.0/24": ["tag:hsa-srv", "hsc@"], "10.4.0.0/24": ["hsc@"]},
    "exitNode": ["tag:hsa-srv", "tag:hsc-srv"],
  },
})";

// Node 4: hsb only, and the same generic autogroup:self rule.
const char* kNode4 = R"({
  "groups": {"group:hsb-team": ["hsb@"]},
  "acls": [
    {"action": "accept", "src": ["hsb@"], "dst": ["hsb@:*"]},
    {"action": "accept", "src": ["autogroup:member"], "dst": ["autogroup:self:*"]},
  ],
})";

TEST(TenantPolicyTest, ExtractFindsPerUserRulesGroupsTagsHostsApproversAndSsh) {
  TenantPolicySplitter split(Hsa());
  auto part = split.Extract(Doc(kNode3));
  ASSERT_TRUE(part.ok()) << part.status().ToString();
  EXPECT_TRUE(part->issues.empty()) << part->issues[0].ToString();
  std::vector<std::string> where;
  for (const auto& r : part->rules) where.push_back(r.Where());
  EXPECT_EQ(where, (std::vector<std::string>{"acls[0]", "acls[2]", "acls[3]", "grants[0]", "ssh[0]"}));
  EXPECT_EQ(part->groups.dump(), R"({"group:hsa-admins":["hsa@"]})");
  EXPECT_EQ(part->tag_owners.dump(), R"({"tag:hsa-srv":["hsa@"]})");
  EXPECT_EQ(part->OwnedTags(), std::vector<std::string>{"tag:hsa-srv"});
  EXPECT_EQ(part->hosts.dump(), R"({"hsa-db":"100.64.3.50/32"})");             // only hsa's rules use it
  EXPECT_EQ(part->shared_hosts.dump(), R"({"shared-dns":"100.64.3.53/32"})");  // hsc's rules use it too
  EXPECT_EQ(part->route_approvers.dump(), R"({"10.3.0.0/24":["tag:hsa-srv"]})");
  EXPECT_EQ(part->exit_node_approvers.dump(), R"(["tag:hsa-srv"])");
  ASSERT_EQ(part->generic_rules.size(), 1u);
  EXPECT_EQ(part->generic_rules[0].Where(), "acls[5]");
}

TEST(TenantPolicyTest, OtherTenantGetsOnlyItsOwnPart) {
  TenantPolicySplitter split(TenantPrincipals{{"hsc"}, {"hsa"}});
  auto part = split.Extract(Doc(kNode3));
  ASSERT_TRUE(part.ok());
  std::vector<std::string> where;
  for (const auto& r : part->rules) where.push_back(r.Where());
  EXPECT_EQ(where, (std::vector<std::string>{"acls[1]", "acls[4]", "ssh[1]"}));
  EXPECT_EQ(part->tag_owners.dump(), R"({"tag:hsc-srv":["group:hsc-ops"]})");  // owned through its group
  EXPECT_EQ(part->route_approvers.dump(), R"({"10.3.0.0/24":["hsc@"],"10.4.0.0/24":["hsc@"]})");
}

TEST(TenantPolicyTest, MergeIntoTargetThenRemoveFromSourceRoundTrips) {
  TenantPolicySplitter split(Hsa());
  PolicyDocument src = Doc(kNode3), tgt = Doc(kNode4);
  auto part = split.Extract(src);
  ASSERT_TRUE(part.ok());
  EXPECT_TRUE(split.CheckTarget(*part, tgt).empty());  // the generic autogroup:self rule is there identically
  auto merged = split.MergeInto(tgt, *part);
  ASSERT_TRUE(merged.ok()) << merged.status().ToString();
  const auto& m = merged->json();
  EXPECT_EQ(m["acls"].size(), 2u + 3u);
  EXPECT_EQ(m["acls"][2].dump(), R"({"action":"accept","src":["hsa@"],"dst":["hsa@:*"]})");
  EXPECT_TRUE(m["groups"].contains("group:hsb-team"));
  EXPECT_TRUE(m["groups"].contains("group:hsa-admins"));
  EXPECT_EQ(m["hosts"].size(), 2u);
  EXPECT_EQ(m["autoApprovers"]["routes"]["10.3.0.0/24"].dump(), R"(["tag:hsa-srv"])");
  // The target's own part for hsa is exactly what left the source.
  auto again = split.Extract(*merged);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->rules.size(), part->rules.size());
  EXPECT_EQ(again->tag_owners.dump(), part->tag_owners.dump());

  auto removed = split.RemoveFrom(src, *part);
  ASSERT_TRUE(removed.ok()) << removed.status().ToString();
  const auto& r = removed->json();
  EXPECT_EQ(r["acls"].size(), 3u);  // hsc's two and the generic one
  EXPECT_FALSE(r["groups"].contains("group:hsa-admins"));
  EXPECT_TRUE(r["groups"].contains("group:hsc-ops"));
  EXPECT_FALSE(r["tagOwners"].contains("tag:hsa-srv"));
  EXPECT_FALSE(r["hosts"].contains("hsa-db"));
  EXPECT_TRUE(r["hosts"].contains("shared-dns"));  // still used by hsc
  EXPECT_EQ(r["grants"].size(), 0u);
  EXPECT_EQ(r["ssh"].size(), 1u);
  EXPECT_EQ(r["autoApprovers"]["routes"]["10.3.0.0/24"].dump(), R"(["hsc@"])");
  EXPECT_EQ(r["autoApprovers"]["exitNode"].dump(), R"(["tag:hsc-srv"])");
  // Nothing of hsa is left on the source.
  auto left = split.Extract(*removed);
  ASSERT_TRUE(left.ok());
  EXPECT_TRUE(left->empty());
  // Removing from the merged target gives the target back: the round trip loses nothing.
  auto back = split.RemoveFrom(*merged, *part);
  ASSERT_TRUE(back.ok());
  auto expect = Doc(kNode4).json();
  expect["hosts"] = nlohmann::ordered_json::object({{"shared-dns", "100.64.3.53/32"}});  // shared hosts stay
  expect["tagOwners"] = nlohmann::ordered_json::object();
  expect["grants"] = nlohmann::ordered_json::array();
  expect["ssh"] = nlohmann::ordered_json::array();
  expect["autoApprovers"] = {{"routes", nlohmann::ordered_json::object()}, {"exitNode", nlohmann::ordered_json::array()}};
  EXPECT_TRUE(SameJsonValue(back->json(), expect)) << back->ToJson();
}

TEST(TenantPolicyTest, MergeAndRemoveAreIdempotent) {
  TenantPolicySplitter split(Hsa());
  auto part = split.Extract(Doc(kNode3));
  ASSERT_TRUE(part.ok());
  auto once = split.MergeInto(Doc(kNode4), *part);
  ASSERT_TRUE(once.ok());
  auto twice = split.MergeInto(*once, *part);
  ASSERT_TRUE(twice.ok());
  EXPECT_TRUE(twice->SameAs(*once)) << twice->ToJson();
  EXPECT_TRUE(PolicyDiff::Lines(*once, *twice).empty());
  auto r1 = split.RemoveFrom(Doc(kNode3), *part);
  ASSERT_TRUE(r1.ok());
  auto r2 = split.RemoveFrom(*r1, *part);
  ASSERT_TRUE(r2.ok());
  EXPECT_TRUE(r2->SameAs(*r1));
}

TEST(TenantPolicyTest, RuleMixingTwoTenantsIsRefusedByIndexAndJson) {
  TenantPolicySplitter split(Hsa());
  auto part = split.Extract(Doc(R"({"acls": [
    {"action": "accept", "src": ["hsa@"], "dst": ["hsa@:*"]},
    {"action": "accept", "src": ["hsa@", "hsb@"], "dst": ["hsa@:*"]}]})"));
  ASSERT_TRUE(part.ok());
  ASSERT_EQ(part->issues.size(), 1u);
  EXPECT_EQ(part->issues[0].kind, PolicyIssueKind::kMixedRule);
  EXPECT_EQ(part->issues[0].where, "acls[1]");
  Status st = RefusalStatus(part->issues, "node 3");
  EXPECT_EQ(st.code(), ExitCode::kRefused);
  EXPECT_NE(st.message().find(R"(acls[1]: mixed_rule: {"action":"accept","src":["hsa@","hsb@"],"dst":["hsa@:*"]})"),
            std::string::npos)
      << st.message();
}

TEST(TenantPolicyTest, MixedGroupSharedTagAndOtherTenantReachingTheTenantAreRefused) {
  TenantPolicySplitter split(Hsa());
  auto part = split.Extract(Doc(R"({
    "groups": {"group:all": ["hsa@", "hsb@"]},
    "tagOwners": {"tag:shared": ["hsa@", "hsb@"], "tag:hsa": ["hsa@"]},
    "acls": [{"action": "accept", "src": ["hsb@"], "dst": ["tag:hsa:22"]}]})"));
  ASSERT_TRUE(part.ok());
  std::vector<std::string> got;
  for (const auto& i : part->issues) got.push_back(std::string(PolicyIssueKindName(i.kind)) + " " + i.where);
  EXPECT_EQ(got, (std::vector<std::string>{"mixed_rule acls[0]", "mixed_group groups.group:all",
                                           "shared_tag tagOwners.tag:shared"}));
}

TEST(TenantPolicyTest, ConflictingGroupOnTargetIsRefusedAndNothingMerged) {
  TenantPolicySplitter split(Hsa());
  auto part = split.Extract(Doc(kNode3));
  ASSERT_TRUE(part.ok());
  PolicyDocument tgt = Doc(R"({"groups": {"group:hsa-admins": ["hsb@"]},
    "hosts": {"hsa-db": "100.64.4.9/32"},
    "acls": [{"action": "accept", "src": ["autogroup:member"], "dst": ["autogroup:self:*"]}]})");
  auto issues = split.CheckTarget(*part, tgt);
  ASSERT_EQ(issues.size(), 2u);
  EXPECT_EQ(issues[0].where, "groups.group:hsa-admins");
  EXPECT_EQ(issues[1].where, "hosts.hsa-db");
  auto merged = split.MergeInto(tgt, *part);
  ASSERT_FALSE(merged.ok());
  EXPECT_EQ(merged.status().code(), ExitCode::kRefused);
  EXPECT_NE(merged.status().message().find("groups.group:hsa-admins: conflict"), std::string::npos);
}

TEST(TenantPolicyTest, GenericRuleMissingOnTargetIsReported) {
  TenantPolicySplitter split(Hsa());
  PolicyDocument src = Doc(R"({"acls": [{"action": "accept", "src": ["autogroup:member"], "dst": ["autogroup:self:*"]}]})");
  auto part = split.Extract(src);
  ASSERT_TRUE(part.ok());
  EXPECT_TRUE(part->rules.empty());  // generic rules move nothing
  EXPECT_TRUE(part->empty());
  auto issues = split.CheckTarget(*part, Doc(R"({"acls": [{"action": "accept", "src": ["hsb@"], "dst": ["hsb@:*"]}]})"));
  ASSERT_EQ(issues.size(), 1u);
  EXPECT_EQ(issues[0].kind, PolicyIssueKind::kGenericMissing);
  EXPECT_EQ(issues[0].where, "source acls[0]");
  // The same rule with members in another order is the same rule.
  EXPECT_TRUE(split.CheckTarget(*part, Doc(R"({"acls": [{"dst": ["autogroup:self:*"], "action": "accept", "src": ["autogroup:member"]}]})")).empty());
}

TEST(TenantPolicyTest, RemoveRefusesWhenTheSourceChangedSincePlan) {
  TenantPolicySplitter split(Hsa());
  auto part = split.Extract(Doc(kNode3));
  ASSERT_TRUE(part.ok());
  PolicyDocument changed = Doc(kNode3);
  changed.mutable_json()["groups"]["group:hsa-admins"] = {"hsa@", "hsa2@"};
  auto r = split.RemoveFrom(changed, *part);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("groups.group:hsa-admins: changed"), std::string::npos) << r.status().message();
}

TEST(TenantPolicyTest, UserTokensByEmailAndTrailingSpaceAreTheTenants) {
  TenantPolicySplitter split(TenantPrincipals{{"hsa", "alice@example.com"}, {}});
  auto part = split.Extract(Doc(R"({"acls": [{"action": "accept", "src": ["alice@example.com"], "dst": [" hsa@:22"]}]})"));
  ASSERT_TRUE(part.ok());
  EXPECT_EQ(part->rules.size(), 1u);
  EXPECT_TRUE(part->issues.empty());
}

TEST(TenantPolicyTest, DiffShowsAddedAndRemovedLinesPerNode) {
  TenantPolicySplitter split(Hsa());
  PolicyDocument src = Doc(kNode3), tgt = Doc(kNode4);
  auto part = split.Extract(src);
  ASSERT_TRUE(part.ok());
  auto merged = split.MergeInto(tgt, *part);
  auto removed = split.RemoveFrom(src, *part);
  ASSERT_TRUE(merged.ok() && removed.ok());
  auto plus = PolicyDiff::Lines(tgt, *merged);
  auto minus = PolicyDiff::Lines(src, *removed);
  auto has = [](const std::vector<std::string>& lines, const std::string& l) {
    return std::find(lines.begin(), lines.end(), l) != lines.end();
  };
  EXPECT_TRUE(has(plus, R"(+ acls[2]: {"action":"accept","src":["hsa@"],"dst":["hsa@:*"]})")) << plus[0];
  EXPECT_TRUE(has(plus, R"(+ groups.group:hsa-admins: ["hsa@"])"));
  EXPECT_TRUE(has(plus, R"(+ tagOwners.tag:hsa-srv: ["hsa@"])"));
  EXPECT_TRUE(has(minus, R"(- acls[0]: {"action":"accept","src":["hsa@"],"dst":["hsa@:*"]})"));
  EXPECT_TRUE(has(minus, R"(- hosts.hsa-db: "100.64.3.50/32")"));
  EXPECT_TRUE(has(minus, R"(- autoApprovers.routes.10.3.0.0/24: ["tag:hsa-srv","hsc@"])"));
  EXPECT_TRUE(has(minus, R"(+ autoApprovers.routes.10.3.0.0/24: ["hsc@"])"));
  for (const auto& l : plus) EXPECT_EQ(l[0], '+') << l;  // merging only adds
  EXPECT_TRUE(PolicyDiff::Lines(src, src).empty());
}

TEST(TenantPolicyTest, WrongSectionTypeIsBadInput) {
  TenantPolicySplitter split(Hsa());
  auto part = split.Extract(Doc(R"({"acls": {"x": 1}})"));
  ASSERT_FALSE(part.ok());
  EXPECT_EQ(part.status().code(), ExitCode::kBadInput);
}

}  // namespace
}  // namespace headshift
