#!/usr/bin/env bash
# The hand-run procedure headshift replaces (research/headscale.md §5: copy the rows, flip the route,
# `ss -K` the tenant's connections), run on the sandbox lab: the anchor for headshift's migrate benchmark.
#   sandbox/hand_migration.sh            # 3 tenants x 1000 devices, moves hsa 3 -> 4, prints one JSON line
# Env: HS (headshift binary, default build/cli/headshift), DEVICES (1000), LOOKUP (per-request|cached),
#      NAME (lab name, default handbench<pid>). Needs root. The lab is removed on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
HS=${HS:-$PWD/build/cli/headshift}
N=${DEVICES:-1000}
LOOKUP=${LOOKUP:-per-request}
NAME=${NAME:-handbench$$}
trap '"$HS" sandbox down --name "$NAME" >/dev/null 2>&1 || true' EXIT
ms() { echo $(( $(date +%s%N) / 1000000 )); }
t0=$(ms)
"$HS" --json sandbox up --name "$NAME" --lookup "$LOOKUP" --tenant "hsa:3:$N" --tenant "hsb:4:$N" --tenant "hsc:3:$N" >/dev/null
t1=$(ms)
D=/tmp/headshift-sandbox-$NAME
DSN=$(cat "$D/secrets/dsn")
start=$(ms)
# 1. copy hsa's node rows to cluster 4 (same user row; the shared layout)
psql "$DSN" -qc "INSERT INTO nodes (cluster_id, machine_key, node_key, disco_key, endpoints, host_info, ipv4, ipv6,
  hostname, given_name, user_id, register_method, tags, auth_key_id, last_seen, expiry, approved_routes, created_at,
  updated_at) SELECT 4, machine_key, node_key, disco_key, endpoints, host_info, ipv4, ipv6, hostname, given_name,
  user_id, register_method, tags, auth_key_id, last_seen, expiry, approved_routes, created_at, updated_at
  FROM nodes WHERE cluster_id = 3 AND user_id = (SELECT id FROM users WHERE name = 'hsa')"
if [ "$LOOKUP" = cached ]; then  # the target must reload to see them
  kill -HUP "$(/usr/bin/python3 -c "import json;print(json.load(open('$D/lab.json'))['clusters']['4']['pid'])")"
  sleep 0.2
fi
copied=$(ms)
# 2. flip the route over HAProxy's runtime socket
/usr/bin/python3 - "$D" <<'PY'
import socket, sys
d = sys.argv[1]
s = socket.socket(socket.AF_UNIX); s.connect(d + "/haproxy.sock")
s.sendall(("set map %s/tenants.map hsa.demo.com headscale-cluster4\n" % d).encode()); s.recv(1000)
PY
flipped=$(ms)
# 3. reset hsa's sessions (its clients use 198.18.0.0/20) in the edge namespace
killed=$(ip netns exec "sandbox-$NAME-edge" ss -K -Htn state established '( sport = :80 or sport = :443 )' dst 198.18.0.0/20 | wc -l)
reset=$(ms)
"$HS" --json sandbox status --name "$NAME" --tenant hsa --on-cluster 4 --timeout 60 > "$D/after.json"
done_ms=$(ms)
/usr/bin/python3 - "$D/after.json" <<PY
import json, sys
s = json.load(open(sys.argv[1]))
t = s["tenants"]
print(json.dumps({"devices_per_tenant": $N, "lookup": "$LOOKUP", "lab_up_ms": $t1 - $t0,
  "copy_ms": $copied - $start, "flip_ms": $flipped - $copied, "ss_kill_ms": $reset - $flipped, "killed": $killed,
  "total_ms": $done_ms - $start, "hsa_on_4": t["hsa"]["connected_by_cluster"].get("4", 0),
  "interruption_ms": t["hsa"]["interruption_ms"], "rejections": t["hsa"]["rejections"],
  "collateral_disconnects": t["hsb"]["disconnects"] + t["hsc"]["disconnects"]}))
PY
