"""Runs one tenant move on the real-peer lab while watching every device, and returns what the peers saw.

Used by the `real` test tier (tests/real), scripts/demo and bench/real_peers. The move itself is a command
(argv): `headshift migrate ...`, or the hand-run procedure of bench/real_peers/hand_migration.py.
"""
import json
import subprocess
import time

import observe
from swarm_records import SwarmWatch


def node_names(lab, cluster):
    """(name, id) of every node the node's API lists; [] while the node is down."""
    try:
        nodes = lab.node_api(cluster, "/api/v1/node").get("nodes", [])
    except OSError:
        return []
    return sorted((n.get("givenName") or n.get("name"), int(n["id"])) for n in nodes)


def merge_summaries(ts, ss, watch, w, tailscaled):
    """One tenant's summary over its tailscaled (DeviceLogWatch) and its swarm devices (SwarmWatch)."""
    inter = [v for d in tailscaled for v in watch.interruptions_ms(d) if v is not None]
    inter += [v for d in w.devices for v in w.interruptions_ms(d) if v is not None]
    out = {"devices": ts["devices"] + ss["devices"],
           "disconnected": sorted(ts["disconnected"] + ss["disconnected"]),
           "reconnected_within": ts["reconnected_within"] + ss["reconnected_within"],
           "unrecovered": sorted(ts["unrecovered"] + ss["unrecovered"]),
           "reauth": sorted(ts["reauth"] + ss["reauth"]), "identity_changed": ss["identity_changed"],
           "interruption_ms": observe.percentiles(inter)}
    return out


def observed_move(lab, tenant, target, argv, probe_pair=None, settle_s=3.0, timeout=300, env=None,
                  reconnect_wait_s=60):
    """Runs argv while watching all devices; waits (bounded) until the tenant's devices are back.

    Returns a dict: exit_code, stdout, stderr, report (parsed stdout if it is JSON), elapsed_ms, per tenant
    {devices, disconnected, unrecovered, reauth, interruption_ms}, watch (the stopped DeviceLogWatch of the
    tailscaled: their losses with tailscaled's error text), identity (devices whose Self.ID, node key,
    tailnet IPs or state changed), probe {sent, lost}, swarm (per tenant with a swarm: SwarmWatch.summary();
    the tenants' figures include them), swarm_watch (the stopped watches, for per-device checks),
    registrations (node rows that appeared on a node and
    were not the tenant's moved devices), online_on_target (the target's own API)."""
    lab.load()
    devices = lab.devices()
    mine = lab.devices(tenant)
    before = observe.snapshot(lab, devices)
    nodes_before = {c: node_names(lab, c) for c in lab.info["clusters"]}
    watch = observe.DeviceLogWatch(lab, devices).start()
    # The swarm devices (lab_swarm.py) are watched through their own records, tenant by tenant.
    swarm_watch = {t: SwarmWatch(lab.swarm(t)).start() for t in lab.swarm_tenants()}
    probe = None
    if probe_pair is None and len(mine) >= 2:
        probe_pair = (mine[0], mine[1])
    if probe_pair:
        probe = observe.DataProbe(lab, probe_pair[0], probe_pair[1])
        if not probe.warm_up():
            watch.stop()
            for w in swarm_watch.values():
                w.stop()
            raise RuntimeError(f"data probe {probe_pair[0]} -> {probe_pair[1]} never answered before the move")
        probe.start()
    t0 = time.monotonic()
    started_at = time.time()
    p = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env)
    elapsed_ms = (time.monotonic() - t0) * 1000.0
    # The move is over for headshift; the devices may still be finishing their reconnects.
    deadline = time.monotonic() + reconnect_wait_s
    while time.monotonic() < deadline:
        # Every device that lost its control connection (the tenant's, and any other tenant's on a
        # restarted target) gets its netmap back, or the deadline passes.
        pending = [d for d in devices if any(v is None for v in watch.interruptions_ms(d))]
        if not pending:
            pending = [d for w in swarm_watch.values() for d in w.devices
                       if any(v is None for v in w.interruptions_ms(d))]
        if not pending:
            break
        time.sleep(0.1 if not swarm_watch else 1.0)
    time.sleep(settle_s)  # probes keep running: a WireGuard loss right after the move counts too
    probe_result = probe.stop() if probe else {"sent": 0, "lost": 0}
    watch.stop()
    for w in swarm_watch.values():
        w.stop()
    after = observe.snapshot(lab, devices)
    nodes_after = {c: node_names(lab, c) for c in lab.info["clusters"]}
    report = None
    try:
        report = json.loads(p.stdout) if p.stdout.strip().startswith("{") else None
    except ValueError:
        report = None
    per_tenant = {t: watch.summary(lab.devices(t)) for t in lab.info["tenants"]}
    swarm = {t: w.summary() for t, w in swarm_watch.items()}
    for t, s in swarm.items():  # the tenant's figures: its tailscaled and its swarm devices together
        per_tenant[t] = merge_summaries(per_tenant[t], s, watch, w=swarm_watch[t], tailscaled=lab.devices(t))
    # Registrations: a (name, id) on a node after the move that was on no node before. A moved device
    # keeps its name and id, so it is not one.
    seen_before = {x for c in nodes_before for x in nodes_before[c]}
    registrations = sorted({x for c in nodes_after for x in nodes_after[c]} - seen_before)
    try:
        # All nodes, then the tenant's devices by name: its tagged servers have no user (headscale >= 0.28).
        online_target = {n: o for n, o in observe.online_on_node(lab, target).items() if n in set(mine)}
    except (OSError, ValueError) as e:  # reported, the caller asserts on it
        online_target = {"error": str(e)}
    return {"exit_code": p.returncode, "stdout": p.stdout, "stderr": p.stderr, "report": report,
            "elapsed_ms": round(elapsed_ms, 1), "tenants": per_tenant, "swarm": swarm,
            "swarm_watch": swarm_watch, "watch": watch, "started_at": started_at,
            "identity": observe.identity_changes(before, after), "probe": probe_result,
            "probe_pair": list(probe_pair) if probe_pair else None, "registrations": registrations,
            "online_on_target": online_target, "nodes_before": nodes_before, "nodes_after": nodes_after,
            "before": before, "after": after}


def print_summary(res, tenant, out=print):
    t = res["tenants"][tenant]
    iv = t["interruption_ms"]
    out(f"  {tenant}: {t['devices']} devices, reconnected {t['reconnected_within']}, "
        f"re-authentications {len(t['reauth'])}, lost data probes {res['probe']['lost']}/{res['probe']['sent']}, "
        f"interruption p50 {iv['p50']} ms p99 {iv['p99']} ms max {iv['max']} ms, total {res['elapsed_ms'] / 1000:.1f} s")
    for other, s in res["tenants"].items():
        if other != tenant:
            out(f"  {other}: {s['devices']} devices, disconnected {len(s['disconnected'])}, "
                f"re-authentications {len(s['reauth'])}")
