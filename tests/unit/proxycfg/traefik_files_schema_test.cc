// Every kind of file headshift writes into a Traefik provider directory validates against the
// SchemaStore file-provider schemas for Traefik v2 and v3 (vendored unmodified in ./schemas, see
// SOURCE.txt), checked with Debian's python3-jsonschema under /usr/bin/python3. A negative control
// proves the check rejects an invalid file.
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "proxycfg/traefik_owned_files.h"
#include "tests/fixtures/cli_runner.h"

namespace headshift {
namespace {

const std::string kDir = std::string(HEADSHIFT_SOURCE_DIR) + "/tests/unit/proxycfg";

std::string Write(const std::string& name, const std::string& text) {
  return testing::WriteTempFile("traefik-schema/" + name, text);
}

std::vector<std::string> GeneratedFiles() {
  std::vector<std::string> files;
  TraefikRouterSpec plain{"hsa", "hsa.demo.com", {}, false, "", false};
  files.push_back(Write("plain.yml", RenderTenantFile("hsa", plain, "headscale-cluster3")));
  TraefikRouterSpec full{"tenant-hsb", "hsb.demo.com", {"web", "websecure"}, true, "letsencrypt", true};
  std::string full_text = RenderTenantFile("hsb", full, "headscale-cluster3");
  files.push_back(Write("full.yml", full_text));
  TraefikRouterSpec tls_only{"hsc", "hsc.demo.com", {"websecure"}, true, "", false};
  files.push_back(Write("tls.yml", RenderTenantFile("hsc", tls_only, "headscale-cluster3")));
  auto edited = TenantFileWithService(full_text, "tenant-hsb", "headscale-cluster4", "full.yml");
  EXPECT_TRUE(edited.ok());
  files.push_back(Write("edited.yml", *edited));
  YAML::Node http = YAML::Load("{rule: 'Host(`a.demo.com`) || Host(`b.demo.com`)', service: s, middlewares: [m], "
                               "priority: 10, tls: {}}");
  files.push_back(Write("adopted.yml", RenderAdoptedTenantFile("a", "a", http, YAML::Node(), "ops.yml")));
  std::vector<TraefikServiceDef> services{GeneratedService("headscale-cluster3", "https://10.0.3.2", true),
                                          GeneratedService("headscale-cluster4", "http://10.0.4.2:8080", true)};
  auto svc = EnsureServices("", services, "services.yml");
  EXPECT_TRUE(svc.ok());
  files.push_back(Write("services-tcp.yml", *svc));
  auto svc_http = EnsureServices("", {GeneratedService("headscale-cluster3", "http://10.0.3.2:8080", false)}, "s.yml");
  EXPECT_TRUE(svc_http.ok());
  files.push_back(Write("services-http.yml", *svc_http));
  return files;
}

testing::CliRun Validate(const std::string& schema, const std::vector<std::string>& files) {
  std::vector<std::string> argv{"/usr/bin/python3", kDir + "/validate_traefik_schema.py", kDir + "/schemas/" + schema};
  argv.insert(argv.end(), files.begin(), files.end());
  return testing::RunProgram(argv);
}

TEST(TraefikFilesSchemaTest, GeneratedFilesValidateAgainstV2AndV3) {
  auto files = GeneratedFiles();
  for (const char* schema : {"traefik-v2-file-provider.json", "traefik-v3-file-provider.json"}) {
    auto run = Validate(schema, files);
    EXPECT_EQ(run.exit_code, 0) << schema << "\n" << run.out << run.err;
    EXPECT_NE(run.out.find(std::to_string(files.size()) + " file(s) valid, 0 invalid"), std::string::npos) << run.out;
  }
}

TEST(TraefikFilesSchemaTest, ValidatorRejectsAnInvalidFile) {
  // A router without `rule`, and a servers list of the wrong type.
  std::string bad = Write("bad.yml", "http:\n  routers:\n    r:\n      service: s\n  services:\n    s:\n"
                                     "      loadBalancer:\n        servers: nope\n");
  for (const char* schema : {"traefik-v2-file-provider.json", "traefik-v3-file-provider.json"}) {
    auto run = Validate(schema, {bad});
    EXPECT_EQ(run.exit_code, 1) << schema << "\n" << run.out << run.err;
    EXPECT_NE(run.out.find("'rule' is a required property"), std::string::npos) << run.out;
  }
}

}  // namespace
}  // namespace headshift
