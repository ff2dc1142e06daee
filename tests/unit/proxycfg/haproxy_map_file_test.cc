// HaproxyMapFile: edits touch only the tenant's line; every other byte is kept.
#include "proxycfg/haproxy_map_file.h"

#include <gtest/gtest.h>

namespace headshift {
namespace {

const char kText[] =
    "# tenants\n"
    "\n"
    "hsa.demo.com\tbe_a   # trailing words are part of the value in HAProxy\n"
    "  hsb.demo.com   be_b  \r\n"
    "hsa.demo.com be_dup\n"
    "hsc.demo.com be_c";  // no final newline

TEST(HaproxyMapFileTest, ParsesLikeHaproxy) {
  HaproxyMapFile f(kText);
  EXPECT_EQ(f.Lookup("hsa.demo.com"), std::optional<std::string>("be_a   # trailing words are part of the value in HAProxy"));
  EXPECT_EQ(f.Lookup("hsb.demo.com"), std::optional<std::string>("be_b"));
  EXPECT_EQ(f.Lookup("hsc.demo.com"), std::optional<std::string>("be_c"));
  EXPECT_EQ(f.Lookup("#"), std::nullopt);
  EXPECT_EQ(f.Lookup("nope"), std::nullopt);
  EXPECT_EQ(f.LinesOf("hsa.demo.com"), (std::vector<int>{3, 5}));
  EXPECT_EQ(f.Entries().size(), 4u);
}

TEST(HaproxyMapFileTest, WithValueReplacesOnlyTheFirstEntrysValue) {
  HaproxyMapFile f(kText);
  EXPECT_EQ(f.WithValue("hsb.demo.com", "be_x"),
            "# tenants\n\nhsa.demo.com\tbe_a   # trailing words are part of the value in HAProxy\n"
            "  hsb.demo.com   be_x  \r\nhsa.demo.com be_dup\nhsc.demo.com be_c");
  EXPECT_EQ(f.WithValue("hsc.demo.com", "be_y"),
            "# tenants\n\nhsa.demo.com\tbe_a   # trailing words are part of the value in HAProxy\n"
            "  hsb.demo.com   be_b  \r\nhsa.demo.com be_dup\nhsc.demo.com be_y");
  // Absent key: appended on its own line (a newline is added to an unterminated last line).
  EXPECT_EQ(f.WithValue("new.demo.com", "be_n"), std::string(kText) + "\nnew.demo.com be_n\n");
  EXPECT_EQ(HaproxyMapFile("").WithValue("k", "v"), "k v\n");
  EXPECT_EQ(HaproxyMapFile("k\n").WithValue("k", "v"), "k v\n");
}

TEST(HaproxyMapFileTest, WithoutRemovesEveryLineOfTheKey) {
  HaproxyMapFile f(kText);
  EXPECT_EQ(f.Without("hsa.demo.com"), "# tenants\n\n  hsb.demo.com   be_b  \r\nhsc.demo.com be_c");
  EXPECT_EQ(f.Without("nope"), kText);
  // Round trip: append then remove gives the original bytes.
  std::string added = HaproxyMapFile("a x\nb y\n").WithValue("c", "z");
  EXPECT_EQ(HaproxyMapFile(added).Without("c"), "a x\nb y\n");
}

}  // namespace
}  // namespace headshift
