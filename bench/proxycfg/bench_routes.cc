// bench_proxycfg_routes [ITERATIONS] [TENANT_FILES]: what a route flip costs against the bare
// operation it wraps, measured in one run.
//  1. HAProxy: HaproxyMapRoutes::Set + Restore (preflight: lock, duplicate scan of `show map`,
//     `show backend`, `get map`; `set map`; verify; atomic map-file rewrite with fsync) versus the
//     anchor: the same two raw `set map` commands over the runtime socket (what `socat` would do).
//  2. Traefik: TraefikFileRoutes::Set + Restore in a provider directory with TENANT_FILES other
//     tenants' files (scan of every file for duplicates, YAML edit, atomic write with fsync) versus
//     the anchor: two WriteFileAtomically() calls of the same bytes.
// Prints ms per flip and the ratio. Real HAProxy on 127.0.0.1 (ephemeral ports), temp dirs.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "common/atomic_file.h"
#include "common/config.h"
#include "proxycfg/haproxy_map_routes.h"
#include "proxycfg/haproxy_runtime_client.h"
#include "proxycfg/traefik_file_routes.h"
#include "tests/integration/proxycfg/proxy_test_util.h"

using namespace headshift;
using Clock = std::chrono::steady_clock;

namespace {

double Run(const std::function<bool()>& op) {
  auto t0 = Clock::now();
  if (!op()) {
    std::fprintf(stderr, "operation failed\n");
    std::exit(1);
  }
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

// Runs the operations interleaved (a, b, c, a, b, c, ...) so load from other processes on the
// machine hits all of them alike; returns ms per operation for each.
std::vector<double> Interleaved(int n, const std::vector<std::function<bool()>>& ops) {
  std::vector<double> total(ops.size(), 0);
  for (int i = 0; i < n; ++i) {
    for (size_t k = 0; k < ops.size(); ++k) total[k] += Run(ops[k]);
  }
  for (auto& t : total) t /= n;
  return total;
}

Config ParseOrDie(const std::string& yaml) {
  auto c = ParseConfig(yaml, "bench");
  if (!c.ok()) {
    std::fprintf(stderr, "%s\n", c.status().ToString().c_str());
    std::exit(1);
  }
  return *c;
}

const char kClusters[] = R"(database: {layout: shared, dsn_env: UNUSED}
clusters:
  - {id: "3", control_url: "http://127.0.0.1:18083", backend: be_a}
  - {id: "4", control_url: "http://127.0.0.1:18084", backend: be_b}
)";

}  // namespace

int main(int argc, char** argv) {
  spdlog::set_level(spdlog::level::warn);
  const int n = argc > 1 ? std::atoi(argv[1]) : 200;
  const int tenant_files = argc > 2 ? std::atoi(argv[2]) : 1000;
  testing::TempDir dir;

  // --- HAProxy ---
  std::filesystem::create_directories(dir / "maps");
  const std::string map = dir / "maps/tenants.map";
  std::string map_text;
  for (int i = 0; i < 1000; ++i) map_text += fmt::format("t{}.demo.com be_a\n", i);
  testing::WriteFile(map, map_text);
  testing::NamedBackend a("A"), b("B");
  testing::HaproxyProcess haproxy(dir.path(), map, {{"be_a", a.port()}, {"be_b", b.port()}});
  if (!haproxy.started()) {
    std::fprintf(stderr, "haproxy did not start\n");
    return 1;
  }
  Config hc = ParseOrDie(std::string(kClusters) + "proxy:\n  kind: haproxy\n  haproxy:\n    runtime_socket: " +
                         haproxy.socket_path() + "\n    map_file: " + map + "\n    host_template: \"{tenant}.demo.com\"\n");
  auto hroutes = HaproxyMapRoutes::Make(hc);
  HaproxyRuntimeClient rt(haproxy.socket_path(), 2000);
  const std::string map_a = testing::ReadWholeFile(map);
  std::string map_b = map_a;
  map_b.replace(map_b.find("t7.demo.com be_a"), 16, "t7.demo.com be_b");
  auto h = Interleaved(n, {
      // anchor: two raw `set map` commands (what `socat` would do)
      [&] { return rt.SetMap(map, "t7.demo.com", "be_b").ok() && rt.SetMap(map, "t7.demo.com", "be_a").ok(); },
      // durable anchor: the same plus persisting each to the map file (survives a reload)
      [&] {
        return rt.SetMap(map, "t7.demo.com", "be_b").ok() && WriteFileAtomically(map, map_b).ok() &&
               rt.SetMap(map, "t7.demo.com", "be_a").ok() && WriteFileAtomically(map, map_a).ok();
      },
      [&] {
        auto c = (*hroutes)->Set("t7", "4");
        return c.ok() && (*hroutes)->Restore(*c).ok();
      }});
  double anchor_h = h[0], anchor_hd = h[1], flip_h = h[2];

  // --- Traefik ---
  const std::string dyn = dir / "dynamic";
  std::filesystem::create_directories(dyn);
  Config tc = ParseOrDie(std::string(kClusters) + "proxy:\n  kind: traefik-file\n  traefik:\n    directory: " + dyn +
                         "\n    host_template: \"{tenant}.demo.com\"\n    throttle_ms: 0\n");
  auto troutes = TraefikFileRoutes::Make(tc);
  for (int i = 0; i < tenant_files; ++i) {
    if (!(*troutes)->Add(fmt::format("t{}", i), "3").ok()) return 1;
  }
  if (!(*troutes)->Add("bench", "3").ok()) return 1;
  const std::string file = dyn + "/headshift-tenant-bench.yml";
  const std::string v3 = testing::ReadWholeFile(file);
  std::string v4 = v3;
  v4.replace(v4.find("be_a"), 4, "be_b");
  auto t = Interleaved(n, {
      [&] { return WriteFileAtomically(file, v4).ok() && WriteFileAtomically(file, v3).ok(); },
      [&] {
        auto c = (*troutes)->Set("bench", "4");
        return c.ok() && (*troutes)->Restore(*c).ok();
      }});
  double anchor_t = t[0], flip_t = t[1];

  std::printf("bench_proxycfg_routes: %d flips (set + restore) each\n", n);
  std::printf("haproxy  anchor raw `set map` x2:                %8.3f ms/flip\n", anchor_h);
  std::printf("haproxy  anchor raw `set map` + atomic map write x2: %8.3f ms/flip\n", anchor_hd);
  std::printf("haproxy  HaproxyMapRoutes Set+Restore (1000 keys): %8.3f ms/flip  ratio %.2f vs raw, %.2f vs durable\n",
              flip_h, flip_h / anchor_h, flip_h / anchor_hd);
  std::printf("traefik  anchor WriteFileAtomically x2:          %8.3f ms/flip\n", anchor_t);
  std::printf("traefik  TraefikFileRoutes Set+Restore (%d files): %8.3f ms/flip  ratio %.2f\n", tenant_files + 2, flip_t,
              flip_t / anchor_t);
  return 0;
}
