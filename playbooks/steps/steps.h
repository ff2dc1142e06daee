// The steps of a tenant migration, one factory per file in this folder. Their order is the table in
// playbooks/steps/step_table.cc (the one place that defines it; MigrationSteps() lists its names).
// To add a step: write playbooks/steps/<name>.cc, declare its factory here, add one line to the table.
#pragma once

#include <vector>

#include "playbooks/migration_step.h"

namespace headshift::steps {

MigrationStep Preflight();         // preflight.cc: read-only checks (before the journal exists)
MigrationStep Copy();              // copy.cc: rows to the target; undo: rows back
MigrationStep Verify();            // verify.cc: counts and checksums on both sides
MigrationStep Policy();            // policy.cc: the tenant's part of the ACL policy onto the target; undo: restore
MigrationStep TargetReady();       // target_ready.cc: the target serves every node key (reload once)
MigrationStep SnapshotSessions();  // snapshot_sessions.cc: the sockets to reset, per session host
MigrationStep SwitchRoute();       // switch_route.cc: the proxy points at the target; undo: route back
MigrationStep RouteLive();         // route_live.cc: the proxy serves the new route
MigrationStep ResetSessions();     // reset_sessions.cc: the snapshot's sockets destroyed; undo: reset again
MigrationStep Reconnected();       // reconnected.cc: the devices online before are online on the target
MigrationStep Tailnet();           // tailnet.cc: the target's packet filter grants the tenant what the source did
MigrationStep CatchUp();           // catch_up.cc: late source writes applied
MigrationStep Complete();          // complete.cc: source rows retired

// All steps in order (built once).
const std::vector<MigrationStep>& Table();

}  // namespace headshift::steps
