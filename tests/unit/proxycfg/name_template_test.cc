// NameTemplate and tenant/backend name validation: names that could inject proxy syntax are
// refused; rendering and matching are inverse.
#include "proxycfg/name_template.h"

#include <gtest/gtest.h>

namespace headshift {
namespace {

TEST(NameTemplateTest, RenderAndMatchAreInverse) {
  NameTemplate host("{tenant}.demo.com");
  auto h = host.Render("hsa");
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(*h, "hsa.demo.com");
  EXPECT_EQ(host.Match("hsa.demo.com"), std::optional<std::string>("hsa"));
  EXPECT_EQ(host.Match("a.b.demo.com"), std::optional<std::string>("a.b"));
  EXPECT_EQ(host.Match("demo.com"), std::nullopt);
  EXPECT_EQ(host.Match(".demo.com"), std::nullopt);
  EXPECT_EQ(host.Match("hsa.other.com"), std::nullopt);
  EXPECT_EQ(host.Match("bad;x.demo.com"), std::nullopt);

  NameTemplate router("tenant-{tenant}-r");
  EXPECT_EQ(*router.Render("x1"), "tenant-x1-r");
  EXPECT_EQ(router.Match("tenant-x1-r"), std::optional<std::string>("x1"));
  EXPECT_EQ(router.Match("tenant-x1"), std::nullopt);

  NameTemplate twice("{tenant}.{tenant}.example");
  EXPECT_EQ(*twice.Render("ab"), "ab.ab.example");
  EXPECT_EQ(twice.Match("ab.ab.example"), std::optional<std::string>("ab"));
  EXPECT_EQ(twice.Match("ab.cd.example"), std::nullopt);
}

TEST(NameTemplateTest, LowercaseTemplateForHaproxyKeys) {
  NameTemplate host("{tenant}.Demo.com", /*lowercase=*/true);
  EXPECT_EQ(*host.Render("Alice"), "alice.demo.com");
  EXPECT_EQ(host.Match("alice.demo.com"), std::optional<std::string>("alice"));
}

TEST(NameTemplateTest, TenantNamesThatCouldInjectSyntaxAreRefused) {
  for (const char* bad : {"", "a b", "a;b", "a\nb", "a`b", "a@b", "-a", ".a", "a/b", "a{b"}) {
    Status st = ValidateTenantName(bad);
    EXPECT_EQ(st.code(), ExitCode::kBadInput) << bad;
  }
  EXPECT_NE(ValidateTenantName("a;b").message().find("contains ';'"), std::string::npos);
  EXPECT_NE(ValidateTenantName("a\nb").message().find("contains 0x0a"), std::string::npos);
  EXPECT_EQ(ValidateTenantName(std::string(64, 'a')).code(), ExitCode::kBadInput);
  for (const char* good : {"hsa", "A1", "team_x", "a.b-c", "7"}) EXPECT_TRUE(ValidateTenantName(good).ok()) << good;
  EXPECT_EQ(NameTemplate("{tenant}.x").Render("a b").status().code(), ExitCode::kBadInput);
}

TEST(NameTemplateTest, BackendNames) {
  EXPECT_TRUE(ValidateBackendName("headscale-cluster3", "clusters[0].backend").ok());
  EXPECT_TRUE(ValidateBackendName("be:3.x_y", "b").ok());
  Status st = ValidateBackendName("svc@docker", "clusters[1].backend");
  EXPECT_EQ(st.code(), ExitCode::kBadInput);
  EXPECT_NE(st.message().find("clusters[1].backend 'svc@docker' contains '@'"), std::string::npos) << st.message();
  EXPECT_FALSE(ValidateBackendName("a b", "b").ok());
  EXPECT_FALSE(ValidateBackendName("", "b").ok());
}

}  // namespace
}  // namespace headshift
