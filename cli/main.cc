// headshift: move a headscale tenant between control-plane nodes without re-authentication.
// main() only parses, dispatches and prints; commands live in cli/cmd_*.cc.
#include <csignal>
#include <cstdio>
#include <iostream>
#include <map>
#include <string>

#include <spdlog/spdlog.h>

#include "cli/build_info.h"
#include "cli/command.h"
#include "common/logging.h"
#include "common/redact.h"

using headshift::ExitCode;
using headshift::ToInt;
using namespace headshift::cli;

namespace {

int Emit(const GlobalOptions& g, CommandResult& r) {
  ExitCode code = r.status.ok() ? r.ok_exit : r.status.code();
  if (g.json) {
    nlohmann::json out = r.json.is_object() ? std::move(r.json) : nlohmann::json::object();
    if (!r.status.ok()) {
      out["error"] = {{"kind", headshift::ExitCodeName(code)},
                      {"message", r.status.message()},
                      {"hint", r.status.hint()}};
    }
    out["exit_code"] = ToInt(code);
    std::string text = out.dump();
    if (!r.json_raw.empty()) {
      // `out` is a non-empty object ("exit_code" at least): the raw members go before its '}'.
      text.pop_back();
      for (auto& [key, value] : r.json_raw) {
        text += ',';
        text += nlohmann::json(key).dump();
        text += ':';
        text += value;
        std::string().swap(value);
      }
      text += '}';
    }
    headshift::RedactInPlace(text);
    std::cout << text << std::endl;
  } else {
    if (!r.text.empty()) {
      headshift::RedactInPlace(r.text);
      std::cout << r.text << std::flush;
    }
    if (!r.status.ok()) {
      std::cerr << "headshift: error: " << headshift::Redact(r.status.message()) << "\n";
      if (!r.status.hint().empty()) std::cerr << "headshift: fix: " << headshift::Redact(r.status.hint()) << "\n";
    }
  }
  return ToInt(code);
}

}  // namespace

int main(int argc, char** argv) {
  std::signal(SIGPIPE, SIG_IGN);
  GlobalOptions g;
  CLI::App app{"headshift: move a headscale tenant between control-plane nodes while its devices stay logged in"};
  app.require_subcommand(1);
  // Global flags (--json, --config, --log-level) may also follow the subcommand: `headshift status T --json`.
  // Subcommands inherit this when they are created (below).
  app.fallthrough();
  app.add_option("--config", g.config_flag, "config file (default: $HEADSHIFT_CONFIG or ./headshift.yaml)");
  app.add_flag("--json", g.json, "print exactly one JSON object on stdout");
  app.add_option("--log-level", g.log_level, "trace, debug, info, warn, error, critical, off")->default_val("info");
  app.set_version_flag("--version", std::string("headshift ") + headshift::BuildVersion() + " (git " +
                                        headshift::BuildRevision() + ")");

  std::map<CLI::App*, CommandRun> runs;
  auto bind = [&runs](CLI::App* sub, CommandRun run) { runs[sub] = std::move(run); };
  for (auto& setup : RegisteredCommands()) setup(app, bind);

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    CommandResult r = Fail(headshift::Status::BadInput(e.what(), "see headshift --help"));
    return Emit(g, r);
  }

  if (auto st = headshift::InitLogging(g.log_level); !st.ok()) {
    CommandResult r = Fail(st);
    return Emit(g, r);
  }

  // Deepest parsed subcommand that has a run function.
  CommandRun* run = nullptr;
  for (CLI::App* cur = &app;;) {
    auto subs = cur->get_subcommands();
    if (subs.empty()) break;
    cur = subs.front();
    if (auto it = runs.find(cur); it != runs.end()) run = &it->second;
  }
  if (!run) {
    CommandResult r = Fail(headshift::Status::BadInput("no command given", "see headshift --help"));
    return Emit(g, r);
  }
  Context ctx(g);
  CommandResult r;
  try {
    r = (*run)(ctx);
  } catch (const std::exception& e) {
    // A bug, not an answer: exit 1 with a message instead of an abort. A migration it interrupts
    // is left journaled as running, as after a crash: `headshift resume` continues it.
    r = Fail(headshift::Status::Failed(std::string("internal error: ") + e.what(),
                                       "report this as a headshift bug; `headshift status` shows where a migration stopped"));
  }
  return Emit(g, r);
}
