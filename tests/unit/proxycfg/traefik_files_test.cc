// Owned Traefik files: naming, editing only the service, extending (never rewriting) the services
// file; and the provider-directory scan that finds duplicate definitions like Traefik does.
#include <filesystem>

#include <gtest/gtest.h>

#include "proxycfg/traefik_owned_files.h"
#include "proxycfg/traefik_provider_dir.h"
#include "tests/fixtures/cli_runner.h"

namespace headshift {
namespace {

TEST(TraefikOwnedFilesTest, Naming) {
  TraefikOwnedFiles f("/etc/traefik/dyn/", "headshift-");
  EXPECT_EQ(f.TenantFile("hsa"), "/etc/traefik/dyn/headshift-tenant-hsa.yml");
  EXPECT_EQ(f.ServicesFile(), "/etc/traefik/dyn/headshift-services.yml");
  EXPECT_EQ(f.TenantOfFile("/etc/traefik/dyn/headshift-tenant-hsa.yml"), std::optional<std::string>("hsa"));
  EXPECT_EQ(f.TenantOfFile("/etc/traefik/dyn/headshift-services.yml"), std::nullopt);
  EXPECT_EQ(f.TenantOfFile("/etc/traefik/dyn/sub/headshift-tenant-hsa.yml"), std::nullopt);
  EXPECT_EQ(f.TenantOfFile("/etc/traefik/dyn/ops.yml"), std::nullopt);
}

TEST(TraefikOwnedFilesTest, ServiceEditKeepsEverythingElse) {
  TraefikRouterSpec spec{"hsa", "hsa.demo.com", {"websecure"}, true, "le", true};
  std::string text = RenderTenantFile("hsa", spec, "headscale-cluster3");
  auto svc = TenantFileService(text, "hsa", "f.yml");
  ASSERT_TRUE(svc.ok());
  EXPECT_EQ(*svc, "headscale-cluster3");
  auto edited = TenantFileWithService(text, "hsa", "headscale-cluster4", "f.yml");
  ASSERT_TRUE(edited.ok());
  // Exactly the two service lines differ.
  std::string expect = text;
  for (int i = 0; i < 2; ++i) expect.replace(expect.find("service: headscale-cluster3"), 27, "service: headscale-cluster4");
  EXPECT_EQ(*edited, expect);
  auto back = TenantFileWithService(*edited, "hsa", "headscale-cluster3", "f.yml");
  EXPECT_EQ(*back, text);
  EXPECT_EQ(TenantFileService(text, "other", "f.yml").status().code(), ExitCode::kFailed);
  auto broken = TenantFileService("http: [\n", "hsa", "f.yml");
  EXPECT_NE(broken.status().message().find("f.yml: does not parse"), std::string::npos);
}

TEST(TraefikOwnedFilesTest, EnsureServicesOnlyAddsMissing) {
  std::string existing =
      "# mine\nhttp:\n  services:\n    headscale-cluster3:\n      loadBalancer:\n        servers:\n"
      "          - url: http://custom:1\n";
  std::vector<TraefikServiceDef> wanted{GeneratedService("headscale-cluster3", "http://10.0.3.2:8080", false)};
  auto same = EnsureServices(existing, wanted, "s.yml");
  ASSERT_TRUE(same.ok());
  EXPECT_EQ(*same, existing);  // present: not rewritten, byte-identical
  wanted.push_back(GeneratedService("headscale-cluster4", "http://10.0.4.2:8080", false));
  auto more = EnsureServices(existing, wanted, "s.yml");
  ASSERT_TRUE(more.ok());
  EXPECT_NE(more->find("http://custom:1"), std::string::npos);
  EXPECT_NE(more->find("http://10.0.4.2:8080"), std::string::npos);
  EXPECT_EQ(more->rfind("# mine\n", 0), 0u);
}

TEST(TraefikOwnedFilesTest, TcpAddressFromUrl) {
  auto addr = [](const std::string& url) {
    return GeneratedService("s", url, true).tcp["loadBalancer"]["servers"][0]["address"].as<std::string>();
  };
  EXPECT_EQ(addr("https://10.0.3.2"), "10.0.3.2:443");
  EXPECT_EQ(addr("http://10.0.3.2"), "10.0.3.2:80");
  EXPECT_EQ(addr("https://h.example:8443/x"), "h.example:8443");
  EXPECT_EQ(addr("https://[fd00::1]"), "[fd00::1]:443");
  EXPECT_EQ(addr("https://[fd00::1]:9443"), "[fd00::1]:9443");
}

TEST(TraefikProviderDirectoryTest, FindsDefinitionsInTraefikLoadOrder) {
  std::string dir = std::filesystem::path(testing::WriteTempFile("scan/a/x.txt", "")).parent_path().parent_path();
  testing::WriteTempFile("scan/b.yml", "HTTP:\n  Routers:\n    r1: {rule: 'Host(`a`)', service: s}\n");
  testing::WriteTempFile("scan/a/c.yaml", "http:\n  routers:\n    r1: {rule: 'Host(`b`)', service: t}\n");
  testing::WriteTempFile("scan/d.toml", "[http.routers.r1]\nrule = \"Host(`c`)\"\nservice = \"u\"\n"
                                        "[tcp.services.svc.loadBalancer]\n");
  testing::WriteTempFile("scan/e.json", "{\"http\":{\"routers\":{\"r1\":{}}}}");  // not loaded by Traefik
  testing::WriteTempFile("scan/f.yml", "http:\n  routers:\n    r1:\n      rule: {{ env \"RULE\" }\n");
  testing::WriteTempFile("scan/.hidden.yml.123.tmp", "http: {routers: {r1: {}}}\n");
  auto scan = TraefikProviderDirectory::Scan(dir);
  ASSERT_TRUE(scan.ok()) << scan.status().ToString();
  auto defs = scan->Definers("http.routers", "r1");
  std::string seen;
  for (const auto& d : defs) seen += d.file + " ";
  for (const auto& e : scan->unparsable()) seen += "[unparsable " + e.file + ": " + e.message + "] ";
  ASSERT_EQ(defs.size(), 4u) << seen;
  EXPECT_EQ(defs[0].file, dir + "/a/c.yaml");  // subdirectory "a" sorts before "b.yml"
  EXPECT_EQ(defs[1].file, dir + "/b.yml");     // keys matched case-insensitively
  EXPECT_EQ(defs[2].file, dir + "/d.toml");
  EXPECT_EQ(defs[3].file, dir + "/f.yml");
  EXPECT_FALSE(defs[3].parsed);
  ASSERT_EQ(scan->unparsable().size(), 1u);
  EXPECT_EQ(scan->Definers("tcp.services", "svc").size(), 1u);
  EXPECT_TRUE(scan->Definers("http.routers", "r2").empty());
  auto def = scan->Definition(dir + "/d.toml", "http.routers", "r1");
  ASSERT_TRUE(def.has_value());
  EXPECT_EQ((*def)["service"].as<std::string>(), "u");

  // A targeted scan finds the same definers for the names it was asked about.
  auto targeted = TraefikProviderDirectory::ScanFor(dir, {"r1", "svc"});
  ASSERT_TRUE(targeted.ok());
  ASSERT_EQ(targeted->Definers("http.routers", "r1").size(), 4u);
  EXPECT_EQ(targeted->Definers("tcp.services", "svc").size(), 1u);
  auto none = TraefikProviderDirectory::ScanFor(dir, {"zz"});
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->Definers("http.routers", "zz").empty());
  EXPECT_TRUE(none->unparsable().empty());  // nothing mentioning "zz" needed parsing
}

}  // namespace
}  // namespace headshift
