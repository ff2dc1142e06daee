#!/usr/bin/env bash
# headshift migrate vs the hand-run procedure, on identical sandbox labs, in one script.
#   bench/migration/bench_migration.sh          # 3 tenants x 1000 devices; moves hsa (1000 of 3000) 3 -> 4
# Env: HS (headshift binary, default build/cli/headshift), DEVICES (1000), LOOKUP (per-request|cached),
#      RESET_RATE (headshift's --reset-rate: resets per second, 0 = all at once; default: the config's,
#      sessions.reset_rate, 2000).
# Prints one JSON object: headshift's total/step timings and the fleet's interruption, the anchor's
# (sandbox/hand_migration.sh), and their ratios. Needs root. Labs are removed on exit.
set -euo pipefail
cd "$(dirname "$0")/../.."
HS=${HS:-$PWD/build/cli/headshift}
N=${DEVICES:-1000}
LOOKUP=${LOOKUP:-per-request}
RATE=${RESET_RATE:-}
NAME=hsbench$$
trap '"$HS" sandbox down --name "$NAME" >/dev/null 2>&1 || true' EXIT
ms() { echo $(( $(date +%s%N) / 1000000 )); }

# 1. The anchor: the blog's procedure (copy rows, set map, ss -K) on its own lab.
anchor=$(HS="$HS" DEVICES="$N" LOOKUP="$LOOKUP" sandbox/hand_migration.sh | tail -1)

# 2. headshift on an identical lab.
"$HS" --json sandbox up --name "$NAME" --lookup "$LOOKUP" --tenant "hsa:3:$N" --tenant "hsb:4:$N" \
  --tenant "hsc:3:$N" >/dev/null
D=/tmp/headshift-sandbox-$NAME
"$HS" --json sandbox reset-stats --name "$NAME" >/dev/null
t0=$(ms)
"$HS" --json --config "$D/headshift.yaml" migrate hsa --to 4 --yes ${RATE:+--reset-rate "$RATE"} > "$D/migration.json"
t1=$(ms)
"$HS" --json sandbox status --name "$NAME" --tenant hsa --on-cluster 4 --timeout 60 > "$D/fleet.json"
t2=$(ms)
# Let late reconnects land in the counters, then read the fleet once more.
sleep 1
"$HS" --json sandbox status --name "$NAME" > "$D/fleet.json"

jq -n --argjson a "$anchor" --slurpfile m "$D/migration.json" --slurpfile f "$D/fleet.json" \
  --argjson wall $((t1 - t0)) --argjson all_on_target $((t2 - t0)) '
  ($m[0]) as $m | ($f[0].tenants) as $t |
  {
    devices_per_tenant: ($t.hsa.clients), lookup: "'"$LOOKUP"'", reset_rate: '"${RATE:-null}"',
    headshift: {
      migrate_wall_ms: $wall, start_to_all_on_target_ms: $all_on_target, state: $m.state,
      steps_ms: $m.timings_ms, sessions_reset: $m.sessions_reset, reconnected: $m.reconnected,
      reauth: $m.reauth, collateral: $m.collateral,
      interruption_ms: $t.hsa.interruption_ms, rejections: $t.hsa.rejections,
      other_tenants_disconnects: ([$t | to_entries[] | select(.key != "hsa") | .value.disconnects] | add)
    },
    anchor: $a,
    ratios: {
      total_anchor_over_headshift: ($a.total_ms / $all_on_target),
      p99_interruption_anchor_over_headshift:
        (if ($a.interruption_ms.p99 // 0) > 0 and ($t.hsa.interruption_ms.p99 // 0) > 0
         then ($a.interruption_ms.p99 / $t.hsa.interruption_ms.p99) else null end)
    }
  }'
