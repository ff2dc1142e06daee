// `headshift doctor`: host and deployment checks (playbooks/doctor.h).
#include "cli/command.h"
#include "playbooks/doctor.h"

namespace headshift::cli {
namespace {

const CommandRegistrar kDoctor([](CLI::App& app, const auto& bind) {
  auto* sub = app.add_subcommand("doctor", "check privileges, kernel support, databases, proxy, control planes, Noise keys");
  static bool host_only_flag = false;  // CLI11 binds to storage that outlives parsing
  bool* host_only = &host_only_flag;
  sub->add_flag("--host-only", *host_only, "only the host checks (privilege, kernel); no config needed");
  static bool proxy_host_flag = false;
  bool* proxy_host = &proxy_host_flag;
  sub->add_flag("--proxy-host", *proxy_host,
                "a fleet's proxy host: host checks, session namespaces and the proxy; no database or control plane")
      ->excludes("--host-only");
  bind(sub, [host_only, proxy_host](Context& ctx) {
    const Config* cfg = nullptr;
    if (!*host_only) {
      auto c = ctx.config();
      if (!c.ok()) return Fail(c.status());
      cfg = *c;
    }
    DoctorReport rep = RunDoctor(cfg, *proxy_host);
    CommandResult r;
    r.json = rep.ToJson();
    r.text = rep.ToText();
    r.ok_exit = static_cast<ExitCode>(rep.ExitCode());
    return r;
  });
});

}  // namespace
}  // namespace headshift::cli
