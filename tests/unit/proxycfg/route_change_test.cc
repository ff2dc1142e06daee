// RouteChange round-trips through JSON (the orchestrator journals it) including "absent before".
#include <gtest/gtest.h>

#include "proxycfg/route_backend.h"

namespace headshift {
namespace {

TEST(RouteChangeTest, JsonRoundTripKeepsAbsentBefore) {
  RouteChange c;
  c.tenant = "hsa";
  c.new_cluster = "4";
  c.new_backend = "headscale-cluster4";
  c.changed = true;
  auto back = RouteChange::FromJson(nlohmann::json::parse(c.ToJson().dump()));
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->tenant, "hsa");
  EXPECT_FALSE(back->previous_backend.has_value());
  EXPECT_FALSE(back->previous_cluster.has_value());
  EXPECT_EQ(back->new_backend, "headscale-cluster4");
  EXPECT_TRUE(back->changed);

  c.previous_backend = "legacy";  // a backend of no configured cluster
  back = RouteChange::FromJson(c.ToJson());
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->previous_backend, std::optional<std::string>("legacy"));
  EXPECT_FALSE(back->previous_cluster.has_value());
}

TEST(RouteChangeTest, MalformedJsonIsBadInput) {
  EXPECT_EQ(RouteChange::FromJson(nlohmann::json::array()).status().code(), ExitCode::kBadInput);
  auto j = nlohmann::json::parse(R"({"tenant":"a","new_cluster":"4","previous_backend":null,"previous_cluster":null})");
  auto r = RouteChange::FromJson(j);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("missing field new_backend"), std::string::npos);
  j["new_backend"] = 4;
  EXPECT_NE(RouteChange::FromJson(j).status().message().find("new_backend is not a string"), std::string::npos);
}

}  // namespace
}  // namespace headshift
