// THE ORDER OF A MIGRATION'S STEPS is defined here, and only here (DESIGN.md "Migration state
// machine"; the README's step table names these files). StepRunner runs them in this order;
// MigrationSteps() (the journal's step names, the CLI's --until/--from choices) is derived from it.
#include "playbooks/migration_report.h"
#include "playbooks/steps/steps.h"

namespace headshift {
namespace steps {

const std::vector<MigrationStep>& Table() {
  static const std::vector<MigrationStep> kTable = {
      Preflight(),
      Copy(),
      Verify(),
      Policy(),
      TargetReady(),
      SnapshotSessions(),
      SwitchRoute(),
      RouteLive(),
      ResetSessions(),
      Reconnected(),
      Tailnet(),
      CatchUp(),
      Complete(),
  };
  return kTable;
}

}  // namespace steps

const std::vector<std::string>& MigrationSteps() {
  static const std::vector<std::string> kNames = [] {
    std::vector<std::string> names;
    for (const auto& s : steps::Table()) names.push_back(s.name);
    return names;
  }();
  return kNames;
}

}  // namespace headshift
