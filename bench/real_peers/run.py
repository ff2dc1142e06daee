#!/usr/bin/python3
"""bench/real_peers: the blog's hand-run procedure against `headshift migrate`, on identical real-peer labs,
in the same run (a script, not a timed test).

For each method a fresh lab (same size, same placement: hsa on node 3, the others spread over 3 and 4) is
brought up, tenant hsa is moved to node 4 while every device is watched (sandbox/real/observed_move.py), and
the lab is taken down. Reported per method, from the devices: total time, control-reconnect interruption per
device (p50/p99/max, from the loss of the control connection to the next netmap), re-authentications, lost
WireGuard probes, collateral (other tenants' devices that lost their control connection, and whether the
method announced it), identity changes and new registrations.

Usage: bench/real_peers/run.py [--tenants 3] [--devices 20] [--edge traefik|haproxy] [--rounds 1] [--json FILE]
"""
import argparse
import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "sandbox", "real"))
import reallab  # noqa: E402
from observed_move import observed_move  # noqa: E402

HS = os.environ.get("HEADSHIFT_BIN", os.path.join(REPO, "build", "cli", "headshift"))


def one(method, args):
    lab = reallab.Lab("bench")
    try:
        info = lab.up(args.tenants, args.devices, ["3", "4"], args.edge)
        if method == "hand":
            argv = [sys.executable, os.path.join(HERE, "hand_migration.py"), "bench", "hsa", "4"]
        else:
            argv = [HS, "--config", info["config"], "--json", "migrate", "hsa", "--to", "4", "--yes"]
        lab.wait_online(timeout=300)
        res = observed_move(lab, "hsa", "4", argv, timeout=600)
        mine = res["tenants"]["hsa"]
        others = {t: s for t, s in res["tenants"].items() if t != "hsa"}
        report = res["report"] or {}
        out = {
            "method": method, "exit_code": res["exit_code"], "devices": mine["devices"],
            "total_ms": res["elapsed_ms"], "interruption_ms": mine["interruption_ms"],
            "reconnected": mine["reconnected_within"], "unrecovered": len(mine["unrecovered"]),
            "reauth": len(mine["reauth"]) + sum(len(s["reauth"]) for s in others.values()),
            "lost_probes": res["probe"]["lost"], "probes": res["probe"]["sent"],
            "collateral_devices": sum(len(s["disconnected"]) for s in others.values()),
            "collateral_on_source": sum(len(s["disconnected"]) for t, s in others.items()
                                        if info["tenants"][t]["home"] == "3"),
            "collateral_announced": (report.get("target_restart") or {}).get("devices_reconnecting"),
            "identity_changes": len(res["identity"]), "registrations": len(res["registrations"]),
            "other_tenants_interruption_ms": {t: s["interruption_ms"] for t, s in others.items()},
        }
        if res["exit_code"] != 0:
            out["stderr"] = res["stderr"][-1500:]
            out["stdout"] = res["stdout"][-1500:]
        return out
    finally:
        lab.down(quiet=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tenants", type=int, default=3)
    ap.add_argument("--devices", type=int, default=20)
    ap.add_argument("--edge", choices=["traefik", "haproxy"], default="traefik")
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--json")
    args = ap.parse_args()
    results = []
    for r in range(args.rounds):
        for method in ("hand", "headshift"):
            t0 = time.monotonic()
            res = one(method, args)
            res["round"] = r + 1
            res["lab_cycle_s"] = round(time.monotonic() - t0, 1)
            results.append(res)
            iv = res["interruption_ms"]
            print(f"round {r + 1} {method:9s} exit {res['exit_code']} total {res['total_ms'] / 1000:6.2f} s  "
                  f"interruption p50 {iv['p50']} p99 {iv['p99']} max {iv['max']} ms  reconnected "
                  f"{res['reconnected']}/{res['devices']}  reauth {res['reauth']}  lost probes "
                  f"{res['lost_probes']}/{res['probes']}  collateral {res['collateral_devices']} "
                  f"(on source {res['collateral_on_source']}, announced {res['collateral_announced']})  "
                  f"identity changes {res['identity_changes']}  registrations {res['registrations']}", flush=True)
    doc = {"tenants": args.tenants, "devices_per_tenant": args.devices, "edge": args.edge, "results": results,
           "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    if args.json:
        with open(args.json, "w") as f:
            json.dump(doc, f, indent=1)
    print(json.dumps(doc))


if __name__ == "__main__":
    main()
