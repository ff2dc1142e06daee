#!/usr/bin/python3
"""bench/real_peers at scale: `headshift migrate` with its adaptive pacing (the default), unpaced
(`--reset-rate 0`) and fixed-rate (`--pacing fixed`), the hand-run procedure, and `headshift drain` of a node,
in the same run, on the same lab shape.

The lab (sandbox/real/reallab.py with swarms): --tenants T on headscale nodes 3 and 4 (tenant i homed on node
3 + i % 2, so hsa, hsc, ... on 3 and hsb, hsd, ... on 4), each with --swarm S real tailscale control clients
(tests/peers/swarm, registered through headscale with the tenant's pre-auth key) and --devices D tailscaled
(two of hsa's carry the WireGuard probe), the `probes` policy (a tenant's tailscaled see each other,
swarm devices see no peer; sandbox/real/lab_swarm.py says why not per-user at this size). With headshift-drain
the lab has a third node, 5, empty until the drain.
Tenant hsa (S + D devices) moves from node 3 to node 4. Full shape: --tenants 10 --swarm 200 --moved-swarm 500
(hsa 502 devices; node 3: hsa + 4 tenants, 1,310 devices; node 4: 5 tenants, 1,010 devices; 2,320 in all).

Between methods the lab is kept, hsa is moved back to node 3 with headshift and node 4 restarted (it would
otherwise still serve hsa's deleted rows from memory, and the next move would skip the target restart), not
measured, then every device is waited for (same shape for each method); --fresh-lab brings up a new lab per
method instead. The hand method runs after the migrate methods (nothing moves back after it); headshift-drain
runs last: `headshift drain 3 --to 4,5` moves every tenant of node 3 (1,310 devices in 5 tenants in the full
shape) onto nodes 4 and 5 (on a fresh lab if the hand method ran).

Per method, from the devices' own records (SwarmWatch, tailscaled logs): interruption p50/p99/max of the moved
devices, devices back within 60 s, re-authentications (every tenant), lost WireGuard probes, total time, the
target restart's cost (devices of tenants homed on the target that lost their control connection, and their
interruption), restarts per target during the move (`target_restarts_per_target`, from the start times the lab
records for every headscale start: <state>/hs<C>/starts.jsonl), headscale CPU seconds and peak RSS per node
(sampled from /proc every 0.5 s); for paced methods the report's waves next to the waves the moved devices saw
(their disconnect times grouped by gaps, swarm_records.waves).

    flock /tmp/headshift-lab.lock /usr/bin/python3 bench/real_peers/scale.py --tenants 10 --swarm 200 \\
        --moved-swarm 500 --json bench/results/real_scale.json
"""
import argparse
import json
import os
import platform
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "sandbox", "real"))
import observe  # noqa: E402
import reallab  # noqa: E402
from observed_move import observed_move  # noqa: E402
from swarm_records import reset_times, waves  # noqa: E402

sys.path.insert(0, HERE)
from headscale_usage import Sampler, headscale_starts  # noqa: E402
from scale_drain import measure_drain  # noqa: E402

HS = os.environ.get("HEADSHIFT_BIN", os.path.join(REPO, "build", "cli", "headshift"))
METHODS = ("headshift-adaptive", "headshift-unpaced", "headshift-fixed", "hand", "headshift-drain")
DEFAULT_METHODS = ("headshift-adaptive", "headshift-unpaced", "headshift-fixed", "headshift-drain")
MIGRATE_ARGS = {"headshift-adaptive": [], "headshift-unpaced": ["--reset-rate", "0"],
                "headshift-fixed": ["--pacing", "fixed"]}


def log(msg):
    print(f"[scale {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def clusters_of(args):
    return ["3", "4", "5"] if "headshift-drain" in args.methods else ["3", "4"]


def lab_up(args):
    lab = reallab.Lab(args.name)
    t0 = time.monotonic()
    names = [f"hs{chr(ord('a') + i)}" for i in range(args.tenants)]
    sizes = {t: args.swarm for t in names}
    sizes["hsa"] = args.moved_swarm or args.swarm
    try:
        lab.up(args.tenants, args.devices, clusters_of(args), "traefik", swarm=sizes, policy=args.policy, tagged=0,
               swarm_concurrency=args.swarm_concurrency, swarm_timeout=args.up_timeout,
               homes={t: ("3", "4")[i % 2] for i, t in enumerate(names)})
    except BaseException:
        lab.down(quiet=True)
        raise
    log(f"lab up in {time.monotonic() - t0:.0f} s ({lab.info.get('swarm_up_s')} s for the swarms)")
    return lab


def settle(lab, timeout):
    """Every device connected again (swarm records and the nodes' API), before a measured move."""
    lab.wait_swarms(timeout, connected=True)
    lab.wait_online(timeout=timeout)


def hs_migrate(lab, to, extra=()):
    return [HS, "--config", lab.info["config"], "--json", "migrate", "hsa", "--to", to, "--yes"] + list(extra)


def report_pacing(report):
    """The migrate report's `pacing` (issue 22's contract), condensed: mode, signal, cap, absorb rate, waves."""
    p = (report or {}).get("pacing")
    if not isinstance(p, dict):
        return None
    waves = [w for w in p.get("waves") or [] if isinstance(w, dict)]
    return {"mode": p.get("mode"), "signal": p.get("signal"), "cap_per_s": p.get("cap_per_s"),
            "devices": p.get("devices"), "absorb_per_s": p.get("absorb_per_s"), "waves": len(waves),
            "wave_sizes": [w.get("sent", w.get("size")) for w in waves],
            "wave_ms": [w.get("ms") for w in waves], "wave_back": [w.get("back") for w in waves]}


def waves_seen(watch, started_at):
    """Wave sizes the moved swarm devices saw: their first disconnect after the start, grouped by gaps."""
    return [len(w) for w in waves(reset_times(watch, since=started_at).values())]


def measure(lab, method, args):
    if method == "hand":
        argv = [sys.executable, os.path.join(HERE, "hand_migration.py"), args.name, "hsa", "4"]
    else:
        argv = hs_migrate(lab, "4", MIGRATE_ARGS[method])
    homes = {t: ti["home"] for t, ti in lab.info["tenants"].items()}
    sampler = Sampler(lab).start()
    res = observed_move(lab, "hsa", "4", argv, timeout=args.move_timeout, reconnect_wait_s=args.reconnect_wait)
    usage = sampler.stop()
    lab.load()
    mine = res["tenants"]["hsa"]
    watch_sw = res["swarm_watch"]
    # Devices back within 60 s: every interruption of the device ended, within 60 s.
    back60 = 0
    for d in watch_sw["hsa"].devices:
        iv = watch_sw["hsa"].interruptions_ms(d)
        if iv and all(v is not None and v <= 60000 for v in iv):
            back60 += 1
    # The tailscaled of hsa (from the merged summary: the disconnected ones that reconnected in time).
    ts_iv = mine["interruption_ms"]
    # The target restart's cost: devices of the tenants homed on the target that lost their connection.
    on_target = [t for t, h in homes.items() if h == "4" and t != "hsa"]
    tr_inter, tr_devices = [], 0
    for t in on_target:
        w = watch_sw.get(t)
        if w is None:
            continue
        for d in w.devices:
            iv = w.interruptions_ms(d)
            if iv:
                tr_devices += 1
                tr_inter += [v for v in iv if v is not None]
    tr_devices += sum(len(res["tenants"][t]["disconnected"]) - len(res["swarm"].get(t, {}).get("disconnected", []))
                      for t in on_target)
    on_source = [t for t, h in homes.items() if h == "3" and t != "hsa"]
    report = res["report"] or {}
    devices_total = sum(len(ti["devices"]) + ti.get("swarm", 0) for ti in lab.info["tenants"].values())
    out = {
        "method": method, "exit_code": res["exit_code"], "tenants": len(homes), "devices_total": devices_total,
        "devices_moved": mine["devices"], "devices_on_source": sum(len(lab.info["tenants"][t]["devices"]) +
                                                                    lab.info["tenants"][t].get("swarm", 0)
                                                                    for t in homes if homes[t] == "3"),
        "devices_on_target": sum(len(lab.info["tenants"][t]["devices"]) + lab.info["tenants"][t].get("swarm", 0)
                                 for t in on_target),
        "interruption_ms": {k: ts_iv[k] for k in ("p50", "p99", "max")},
        "disconnected": len(mine["disconnected"]),
        "reconnected": back60 + sum(1 for d in lab.devices("hsa")
                                    if d in mine["disconnected"] and d not in mine["unrecovered"]),
        "unrecovered": len(mine["unrecovered"]),
        "reauth": sum(len(s["reauth"]) for s in res["tenants"].values()),
        "identity_changed": sum(len(s.get("identity_changed", [])) for s in res["tenants"].values()) +
        len(res["identity"]),
        "lost_probes": res["probe"]["lost"], "probes": res["probe"]["sent"],
        "total_ms": res["elapsed_ms"],
        "target_restart": {"devices": tr_devices, "interruption_ms": {k: v for k, v in observe.percentiles(
            tr_inter).items() if k != "n"}, "announced": (report.get("target_restart") or {}).get(
            "devices_reconnecting")},
        "target_restarts_per_target": headscale_starts(lab, "4", res["started_at"]),
        "pacing": report_pacing(res["report"]),
        "waves_seen": waves_seen(watch_sw["hsa"], res["started_at"]),
        "source_tenants_disconnected": sum(len(res["tenants"][t]["disconnected"]) for t in on_source),
        "headscale": usage,
        "headscale_cpu_s": {c: u["cpu_s"] for c, u in usage.items()},
        "headscale_rss_max_mib": {c: u["rss_max_mib"] for c, u in usage.items()},
        "registrations": len(res["registrations"]),
    }
    if res["exit_code"] != 0:
        # The per-wave progress lines would crowd out the error: keep the other lines.
        lines = [ln for ln in res["stderr"].splitlines() if "reset wave" not in ln]
        out["stderr"] = "\n".join(lines)[-3000:]
    if report:
        out["report_summary"] = {k: report.get(k) for k in ("reconnected", "online_before", "reauth", "stragglers",
                                                             "warnings") if k in report}
        if isinstance(out["report_summary"].get("stragglers"), list):
            out["report_summary"]["stragglers"] = len(out["report_summary"]["stragglers"])
        # Where the total goes, step by step (the report's timings_ms): the target's restart (target_ready), the
        # reset, and complete's deletion of the source's in-memory entries.
        out["steps_ms"] = report.get("timings_ms")
        out["ghosts_deleted"] = (report.get("ghosts") or {}).get("deleted")
    return out


def move_back(lab, args):
    t0 = time.monotonic()
    p = subprocess.run(hs_migrate(lab, "3"), capture_output=True, text=True, timeout=args.move_timeout)
    if p.returncode != 0:
        raise RuntimeError(f"move back failed (exit {p.returncode}): {p.stderr[-1500:]}")
    # Node 4 still serves hsa's deleted rows from memory (headscale >= 0.27 reads its nodes only at start), so
    # the next move would find them served and skip the target restart: restart it, as a fresh lab would be.
    lab.restart_node("4")
    settle(lab, args.up_timeout)
    log(f"hsa moved back to node 3 and every device settled in {time.monotonic() - t0:.0f} s")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--name", default="scale")
    ap.add_argument("--tenants", type=int, default=4)
    ap.add_argument("--swarm", type=int, default=500, help="swarm devices per tenant")
    ap.add_argument("--moved-swarm", type=int, default=0, help="swarm devices of hsa, the moved tenant "
                    "(default: --swarm)")
    ap.add_argument("--devices", type=int, default=2, help="tailscaled per tenant")
    ap.add_argument("--swarm-concurrency", type=int, default=10, help="per tenant")
    ap.add_argument("--methods", default=",".join(DEFAULT_METHODS),
                    help=f"comma-separated, from {', '.join(METHODS)} (default: all but hand)")
    ap.add_argument("--fresh-lab", action="store_true", help="a new lab per method instead of moving back")
    ap.add_argument("--up-timeout", type=float, default=1200)
    ap.add_argument("--move-timeout", type=float, default=1200)
    ap.add_argument("--reconnect-wait", type=float, default=180,
                    help="after the move, how long the observer waits for devices still reconnecting")
    ap.add_argument("--policy", choices=["probes", "per-user"], default="probes",
                    help="the lab's policy (sandbox/real/lab_swarm.py); per-user does not come up with "
                         "tenants of hundreds of swarm devices on 2 loaded cores")
    ap.add_argument("--json")
    ap.add_argument("--merge", nargs="+", metavar="JSON",
                    help="no lab: write --json from earlier outputs of this script (their runs, in order; the first "
                         "one's header), e.g. a --fresh-lab run of one method added to a full run")
    args = ap.parse_args()
    if args.merge:
        docs = [json.load(open(f)) for f in args.merge]
        doc = dict(docs[0])
        doc["runs"] = [dict(r, source=os.path.basename(f), shape=d.get("shape"), command=d.get("command"))
                       for f, d in zip(args.merge, docs) for r in d["runs"]]
        doc["merged_from"] = [{"file": os.path.basename(f), "when": d["when"], "command": d["command"]}
                              for f, d in zip(args.merge, docs)]
        with open(args.json, "w") as f:
            json.dump(doc, f, indent=1)
        return
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    if not methods or any(m not in METHODS for m in methods):
        ap.error(f"--methods: choose from {', '.join(METHODS)}")
    # The hand method after the migrate methods (nothing moves back after it), the drain last (it empties node 3).
    methods = [m for m in methods if m not in ("hand", "headshift-drain")] + \
        [m for m in ("hand", "headshift-drain") if m in methods]
    args.methods = methods
    runs, lab = [], None
    t_all = time.monotonic()
    try:
        for i, m in enumerate(methods):
            after_hand = i > 0 and methods[i - 1] == "hand"
            if lab is None or args.fresh_lab or after_hand:
                if lab is not None:
                    lab.down(quiet=True)
                lab = lab_up(args)
            elif i > 0:
                move_back(lab, args)
            settle(lab, args.up_timeout)
            time.sleep(5)
            if m == "headshift-drain":
                log(f"{m}: draining node 3 onto 4 and 5")
                r = measure_drain(lab, args)
                runs.append(r)
                iv = r["interruption_ms"]
                log(f"{m}: exit {r['exit_code']} total {r['total_ms'] / 1000:.1f} s placement {r['placement']} "
                    f"interruption p50 {iv['p50']} p99 {iv['p99']} max {iv['max']} ms unrecovered {r['unrecovered']} "
                    f"reauth {r['reauth']} restarts per target {r['target_restarts_per_target']} (reported "
                    f"{r['target_restarts_reported']}) targets' own devices {r['targets_own_devices']}")
            else:
                log(f"{m}: moving hsa to node 4")
                r = measure(lab, m, args)
                runs.append(r)
                iv = r["interruption_ms"]
                log(f"{m}: exit {r['exit_code']} total {r['total_ms'] / 1000:.1f} s interruption p50 {iv['p50']} p99 "
                    f"{iv['p99']} max {iv['max']} ms back<60s {r['reconnected']}/{r['devices_moved']} reauth "
                    f"{r['reauth']} lost probes {r['lost_probes']}/{r['probes']} target restart {r['target_restart']} "
                    f"pacing {r['pacing']} waves seen {r['waves_seen']} cpu {r['headscale_cpu_s']} "
                    f"rss {r['headscale_rss_max_mib']}")
            if args.json:
                write(args, runs, t_all)
    finally:
        if lab is not None:
            lab.down(quiet=True)
    write(args, runs, t_all)


def version(argv):
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=30).stdout.strip().splitlines()[0]
    except (OSError, IndexError, subprocess.SubprocessError):
        return None


def write(args, runs, t_all):
    doc = {"when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
           "machine": {"cpus": os.cpu_count(), "kernel": platform.release(),
                       "loadavg": [round(x, 1) for x in os.getloadavg()]},
           "headscale": version([reallab.peer_bin("headscale"), "version"]),
           "tailscale": version([reallab.peer_bin("tailscale"), "version"]),
           "shape": {"tenants": args.tenants, "swarm_per_tenant": args.swarm,
                     "swarm_moved_tenant": args.moved_swarm or args.swarm, "tailscaled_per_tenant": args.devices,
                     "nodes": clusters_of(args), "moved": "hsa 3 -> 4", "policy": args.policy,
                     "drained": "3 -> 4,5" if "headshift-drain" in args.methods else None,
                     "between_methods": ("fresh lab" if args.fresh_lab
                                         else "hsa moved back to 3 with headshift, node 4 restarted")},
           "command": " ".join(["bench/real_peers/scale.py"] + sys.argv[1:]),
           "bench_s": round(time.monotonic() - t_all), "runs": runs}
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, "w") as f:
            json.dump(doc, f, indent=1)
    print(json.dumps(doc))


if __name__ == "__main__":
    main()
