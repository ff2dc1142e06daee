// The CLI's command frame. Each `cli/cmd_*.cc` registers its subcommands with a static
// CommandRegistrar; main() parses with CLI11, runs the chosen command and prints its result:
// `--json` → exactly one JSON object on stdout; otherwise `text` on stdout. Logs go to stderr.
// All output passes through Redact(). A command reports failure through `status`; the process exits
// with status.code() (exit codes: common/exit_codes.h).
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "common/config.h"
#include "common/status.h"

namespace headshift::cli {

struct GlobalOptions {
  std::string config_flag;  // --config (empty: HEADSHIFT_CONFIG or ./headshift.yaml)
  bool json = false;        // --json
  std::string log_level = "info";
};

// What a command hands back to main().
struct CommandResult {
  Status status;        // OK or the failure (its code is the exit code)
  nlohmann::json json;  // the --json object (main adds "error" on failure)
  // Members of the --json object whose values are already serialized JSON (large arrays written
  // by a streaming writer); main appends them to `json`'s members. Keys must not repeat json's.
  std::vector<std::pair<std::string, std::string>> json_raw;
  std::string text;     // human output for stdout
  // Exit code when status is OK but the command wants a non-zero code (e.g. doctor: 1 when a
  // non-privilege check failed). Ignored when status is not OK.
  ExitCode ok_exit = ExitCode::kOk;
};

// Per-invocation context: global options and lazily loaded config.
class Context {
 public:
  explicit Context(const GlobalOptions& g) : global_(g) {}
  const GlobalOptions& global() const { return global_; }
  bool json() const { return global_.json; }
  // Loads the config on first use. BadInput if missing or invalid.
  StatusOr<const Config*> config();
  // True when progress lines may be drawn (stderr is a TTY and not --json).
  bool interactive() const;

 private:
  const GlobalOptions& global_;
  std::unique_ptr<Config> config_;
};

using CommandRun = std::function<CommandResult(Context&)>;

// Adds subcommands to `app`; for each, calls `bind(sub, run)` so main() can run the chosen one.
using CommandSetup = std::function<void(CLI::App& app, const std::function<void(CLI::App*, CommandRun)>& bind)>;

struct CommandRegistrar {
  explicit CommandRegistrar(CommandSetup setup);
};

// Registered setups, in registration order (used by main()).
std::vector<CommandSetup>& RegisteredCommands();

// Helper for commands: a failed result with the status and an empty JSON object.
CommandResult Fail(Status st);

}  // namespace headshift::cli
