// headscale-standin: the sandbox's STAND-IN for one headscale control-plane node (see
// sandbox/standin_server.h for exactly what it implements). Not headscale.
//
//   headscale-standin --cluster-id 3 --listen 10.0.0.2:8080 --dsn-file F --api-key-file F
//                     --noise-key mkey:… [--lookup per-request|cached] [--keepalive-ms 1000]
//                     [--disconnect-grace-ms 10000] [--reload-drops-streams] [--absorb-per-s N]
//                     [--ready-file F]
// SIGHUP reloads the node cache (cached mode; with --reload-drops-streams like a restart: every
// connection closes); SIGINT/SIGTERM stop it.
#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>

#include "common/atomic_file.h"
#include "common/config.h"
#include "common/logging.h"
#include "sandbox/standin_server.h"

using namespace headshift;
using namespace headshift::sandbox;

namespace {

StatusOr<std::string> Secret(const std::string& file, const std::string& env, const std::string& what) {
  SecretRef ref;
  ref.file = file;
  ref.env = env;
  if (ref.empty()) return std::string();
  return ResolveSecret(ref, what);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"headscale-standin: a STAND-IN for a headscale control-plane node (sandbox lab only)"};
  StandinOptions o;
  std::string dsn_file, dsn_env, api_key_file, api_key_env, mode = "per-request", log_level = "info";
  app.add_option("--cluster-id", o.cluster_id, "nodes.cluster_id value this node serves")->required();
  app.add_option("--listen", o.listen, "ip:port to listen on (repeatable; default 127.0.0.1:0)");
  app.add_option("--dsn-file", dsn_file, "file holding the libpq DSN");
  app.add_option("--dsn-env", dsn_env, "environment variable holding the libpq DSN");
  app.add_option("--api-key-file", api_key_file, "file holding the API key (Bearer)");
  app.add_option("--api-key-env", api_key_env, "environment variable holding the API key");
  app.add_option("--noise-key", o.noise_key, "Noise public key answered by /key (mkey:...)")->required();
  app.add_option("--lookup", mode, "per-request | cached")->default_val("per-request");
  app.add_option("--keepalive-ms", o.keepalive_ms, "keep-alive period")->default_val(1000)->check(CLI::Range(10, 600000));
  app.add_option("--disconnect-grace-ms", o.disconnect_grace_ms, "wait for a reconnect before marking offline")
      ->default_val(10000)
      ->check(CLI::Range(0, 3600000));
  app.add_flag("--reload-drops-streams", o.reload_drops_streams,
               "SIGHUP acts as a restart of headscale: every connection is closed, every node starts offline");
  app.add_option("--absorb-per-s", o.absorb_per_s,
                 "serve at most N new control streams per second, the rest wait in line (a slow node; 0: no limit)")
      ->default_val(0)
      ->check(CLI::Range(int64_t{0}, int64_t{1000000}));
  app.add_option("--ready-file", o.ready_file, "JSON file written once serving (pid, listen addresses)");
  app.add_option("--log-level", log_level, "log level")->default_val("info");
  CLI11_PARSE(app, argc, argv);
  if (auto st = InitLogging(log_level); !st.ok()) {
    fprintf(stderr, "headscale-standin: %s\n", st.ToString().c_str());
    return 2;
  }
  auto m = ParseLookupMode(mode);
  SecretRef dsn_ref;
  dsn_ref.file = dsn_file;
  dsn_ref.env = dsn_env;
  auto dsn = dsn_ref.empty() ? StatusOr<std::string>(std::string()) : ResolveDsn(dsn_ref, "--dsn-file");
  auto key = Secret(api_key_file, api_key_env, "--api-key-file");
  for (const Status* st : {&m.status(), &dsn.status(), &key.status()}) {
    if (!st->ok()) {
      spdlog::error("{}", st->ToString());
      return ToInt(st->code());
    }
  }
  o.mode = *m;
  o.dsn = *dsn;
  o.api_key = *key;
  StandinServer server(o);
  if (Status st = server.Start(); !st.ok()) {
    spdlog::error("{}", st.ToString());
    return ToInt(st.code());
  }
  server.Run();
  return 0;
}
