#include "cli/command.h"

#include <unistd.h>

namespace headshift::cli {

StatusOr<const Config*> Context::config() {
  if (!config_) {
    auto c = LoadConfig(DefaultConfigPath(global_.config_flag));
    if (!c.ok()) return c.status();
    config_ = std::make_unique<Config>(std::move(c).value());
  }
  return static_cast<const Config*>(config_.get());
}

bool Context::interactive() const { return !global_.json && isatty(STDERR_FILENO); }

std::vector<CommandSetup>& RegisteredCommands() {
  static std::vector<CommandSetup> v;
  return v;
}

CommandRegistrar::CommandRegistrar(CommandSetup setup) { RegisteredCommands().push_back(std::move(setup)); }

CommandResult Fail(Status st) {
  CommandResult r;
  r.status = std::move(st);
  r.json = nlohmann::json::object();
  return r;
}

}  // namespace headshift::cli
