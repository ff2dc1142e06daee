// TagOwnership / ClassifyTaggedDevice: which tenant a tagged device (no user) belongs to, and the
// conflicts that forbid deciding it.
#include "migrate/tag_ownership.h"

#include <gtest/gtest.h>

namespace headshift::migrate {
namespace {

TagOwnership Owners() {
  TagOwnership o;
  o.Add("hsa", {"tag:hsa-srv", "tag:hsa-router"});
  o.Add("hsb", {"tag:hsb-srv"});
  o.Add("hsa", {"tag:both"});
  o.Add("hsb", {"tag:both"});
  return o;
}

TaggedDevice Device(const std::string& tags) {
  TaggedDevice d;
  d.id = 12;
  d.name = "srv";
  d.tags_json = tags;
  return d;
}

TEST(TagOwnershipTest, OwnedOnlyByLeavesSharedTagsOut) {
  EXPECT_EQ(Owners().OwnedOnlyBy("hsa"), (std::vector<std::string>{"tag:hsa-router", "tag:hsa-srv"}));
  EXPECT_EQ(Owners().OwnedOnlyBy("hsb"), (std::vector<std::string>{"tag:hsb-srv"}));
  EXPECT_TRUE(Owners().OwnedOnlyBy("hsc").empty());
  EXPECT_TRUE(TagOwnership().empty());
}

TEST(TagOwnershipTest, ParseTags) {
  EXPECT_EQ(*ParseTags("[\"tag:a\",\"tag:b\"]"), (std::vector<std::string>{"tag:a", "tag:b"}));
  EXPECT_TRUE(ParseTags("null")->empty());
  EXPECT_TRUE(ParseTags("")->empty());
  EXPECT_FALSE(ParseTags("{\"a\":1}"));
  EXPECT_FALSE(ParseTags("[1]"));
  EXPECT_FALSE(ParseTags("[tag:a"));
}

TEST(TagOwnershipTest, OwnTagsMove) {
  TaggedVerdict v = ClassifyTaggedDevice(Owners(), "hsa", Device("[\"tag:hsa-srv\",\"tag:hsa-router\"]"));
  EXPECT_TRUE(v.relevant);
  EXPECT_TRUE(v.moves);
  EXPECT_EQ(v.conflict, "");
  // Another tenant's device is not hsa's business.
  v = ClassifyTaggedDevice(Owners(), "hsa", Device("[\"tag:hsb-srv\"]"));
  EXPECT_FALSE(v.relevant);
  EXPECT_EQ(v.conflict, "");
}

TEST(TagOwnershipTest, SharedMixedAndUndecidedAreConflictsNamingNodeAndTag) {
  TaggedVerdict v = ClassifyTaggedDevice(Owners(), "hsa", Device("[\"tag:both\"]"));
  EXPECT_EQ(v.conflict, "tag_shared");
  EXPECT_EQ(v.tags, std::vector<std::string>{"tag:both"});
  EXPECT_NE(v.message.find("tagged node 12 (srv)"), std::string::npos) << v.message;
  EXPECT_NE(v.message.find("owned by hsa and by hsb"), std::string::npos) << v.message;

  v = ClassifyTaggedDevice(Owners(), "hsa", Device("[\"tag:hsa-srv\",\"tag:hsb-srv\",\"tag:nobody\"]"));
  EXPECT_EQ(v.conflict, "tag_mixed");
  EXPECT_EQ(v.tags, (std::vector<std::string>{"tag:hsb-srv", "tag:nobody"}));
  EXPECT_NE(v.message.find("tag:hsb-srv owned by hsb"), std::string::npos) << v.message;
  EXPECT_NE(v.message.find("tag:nobody owned by no one"), std::string::npos) << v.message;

  TaggedDevice borrowed = Device("[\"tag:hsa-srv\"]");
  borrowed.linked_elsewhere = true;
  borrowed.link_description = "pre_auth_keys 7 of user hsb";
  v = ClassifyTaggedDevice(Owners(), "hsa", borrowed);
  EXPECT_EQ(v.conflict, "tag_owner_undecided");
  EXPECT_NE(v.message.find("pre_auth_keys 7 of user hsb"), std::string::npos) << v.message;

  // hsa's key, hsb's tags: seen from hsa.
  TaggedDevice keyed = Device("[\"tag:hsb-srv\"]");
  keyed.linked_to_tenant = true;
  v = ClassifyTaggedDevice(Owners(), "hsa", keyed);
  EXPECT_EQ(v.conflict, "tag_owner_undecided");
  EXPECT_EQ(v.tags, std::vector<std::string>{"tag:hsb-srv"});

  // hsa's key and tags no one owns: moves through the key, as before tag ownership was known.
  keyed.tags_json = "[\"tag:nobody\"]";
  v = ClassifyTaggedDevice(Owners(), "hsa", keyed);
  EXPECT_EQ(v.conflict, "");
  EXPECT_TRUE(v.moves);

  keyed.tags_json = "not json";
  v = ClassifyTaggedDevice(Owners(), "hsa", keyed);
  EXPECT_EQ(v.conflict, "tag_owner_undecided");
}

}  // namespace
}  // namespace headshift::migrate
