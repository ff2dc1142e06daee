#!/usr/bin/python3
"""scripts/demo on real peers: real headscale nodes, real Traefik, real tailscaled devices.

Brings a lab up (3 tenants x 10 devices by default, over clusters 3 and 4), shows where each tenant
lives, runs `headshift doctor` and `plan`, then `headshift migrate hsa --to 4 --yes` while watching every
device, and prints what the devices saw, per tenant. The lab is always taken down at the end.
Env: DEMO_TENANTS, DEMO_DEVICES, DEMO_EDGE (traefik|haproxy), HEADSHIFT_BIN, REAL_KEEP_LAB=1.
"""
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import reallab  # noqa: E402
from observed_move import observed_move  # noqa: E402

REPO = os.path.dirname(os.path.dirname(HERE))
HS = os.environ.get("HEADSHIFT_BIN", os.path.join(REPO, "build", "cli", "headshift"))


def say(msg):
    print(f"\n\033[1m== {msg}\033[0m", flush=True)


def hs(lab, *args, check=False):
    p = subprocess.run([HS, "--config", lab.info["config"]] + list(args), text=True, capture_output=True)
    sys.stdout.write(p.stdout)
    if p.returncode != 0:
        sys.stdout.write(p.stderr)
    if check and p.returncode != 0:
        raise SystemExit(p.returncode)
    return p


def main():
    tenants = int(os.environ.get("DEMO_TENANTS", "3"))
    devices = int(os.environ.get("DEMO_DEVICES", "10"))
    edge = os.environ.get("DEMO_EDGE", "traefik")
    lab = reallab.Lab("demo")
    try:
        say(f"bringing up the real-peer lab: {tenants} tenants x {devices} tailscaled devices, "
            f"headscale nodes 3 and 4, {edge} in front")
        info = lab.up(tenants, devices, ["3", "4"], edge)
        with open(os.path.join(reallab.PEERS_DIR, "versions.json")) as f:
            v = json.load(f)
        print(f"  real peers: headscale {v['headscale']}, tailscale {v['tailscale']}, Traefik {v['traefik']}"
              f" (lab up in {info['up_s']} s)")
        for t, ti in info["tenants"].items():
            tagged = f" (tagged server {', '.join(ti['tagged_devices'])})" if ti.get("tagged_devices") else ""
            print(f"  {t}: {len(ti['devices'])} devices registered on node {ti['home']} from {ti['address']}{tagged}")
        print(f"  tenants kept apart by the nodes' ACL policies ({lab.policy_kind()}, {lab.policy_mode()} mode); "
              f"hsb-1 sees {len(set(lab.device_peers('hsb-1')) & set(lab.devices('hsa')))} of hsa's devices")

        say("where each tenant lives (the proxy's routes)")
        hs(lab, "route", "show")
        say("doctor: privileges, kernel, databases, control planes, Noise keys, proxy")
        hs(lab, "doctor")
        say("plan: what moving hsa to cluster 4 would do (changes nothing)")
        hs(lab, "plan", "hsa", "--to", "4")

        say("migrate hsa --to 4, watching every device")
        lab.wait_online()
        res = observed_move(lab, "hsa", "4", [HS, "--config", lab.info["config"], "--json", "migrate", "hsa",
                                              "--to", "4", "--yes"])
        r = res["report"] or {}
        if res["exit_code"] != 0:
            print(res["stdout"][-3000:], res["stderr"][-3000:])
            print(f"migration failed (exit {res['exit_code']})")
            return res["exit_code"]
        print(f"  migration {r.get('id')}: {r.get('state')} in {res['elapsed_ms'] / 1000:.1f} s; "
              f"rows moved {json.dumps(r.get('rows'))}")
        tr = r.get("target_restart") or {}
        if tr.get("restarted"):
            print(f"  node 4 was restarted to load the rows (headscale >= 0.27): "
                  f"{tr.get('devices_reconnecting')} devices of other tenants reconnected, as reported beforehand")

        pol = r.get("policy") or {}
        for side in ("target", "source"):
            d = (pol.get(side) or {})
            if d.get("diff"):
                print(f"  ACL policy of node {d.get('cluster')} ({d.get('mode')} mode):")
                for line in d["diff"][:12]:
                    print(f"    {line}")
        tn = r.get("tailnet") or {}
        print(f"  tailnet on node 4: " + (f"same packet filter as on node 3 for hsa's {tn.get('addresses')} "
                                           f"addresses ({tn.get('differences')} differences)" if tn.get("checked")
                                           else f"not compared ({tn.get('reason')})"))
        g = r.get("ghosts") or {}
        print(f"  stale entries of hsa removed from node 3's memory: {g.get('deleted', 0)}; node 3 now lists "
              f"{sum(1 for n in lab.node_api('3', '/api/v1/node')['nodes'] if (n.get('givenName') or '') in set(lab.devices('hsa')))} of them")

        say("what the devices saw (tailscaled logs, tailscale status --json, WireGuard probes)")
        for t, s in res["tenants"].items():
            iv = s["interruption_ms"]
            if t == "hsa":
                print(f"  {t} (moved): {s['devices']} devices, reconnected {s['reconnected_within']}, "
                      f"re-authentications {len(s['reauth'])}, identity changes {len(res['identity'])}, "
                      f"lost data probes {res['probe']['lost']} of {res['probe']['sent']}, "
                      f"interruption p50 {iv['p50']} ms p99 {iv['p99']} ms max {iv['max']} ms")
            else:
                why = " (node 4's restart, reported)" if s["disconnected"] and lab.info["tenants"][t]["home"] == "4" else ""
                print(f"  {t} (on node {lab.info['tenants'][t]['home']}): {s['devices']} devices, "
                      f"disconnected {len(s['disconnected'])}{why}, re-authentications {len(s['reauth'])}")
        print(f"  new registrations on either node: {len(res['registrations'])}; total time "
              f"{res['elapsed_ms'] / 1000:.1f} s")
        hsa = lab.devices("hsa")
        print(f"  hsa's devices still see each other: {all(set(hsa) - {d} <= set(lab.device_peers(d)) for d in hsa)}; "
              f"hsb-1 (now on the same node) sees {len(set(lab.device_peers('hsb-1')) & set(hsa))} of them")
        print("\nhsa's devices now talk to node 4 through the new route with their existing node keys and ids.")
        return 0
    finally:
        if os.environ.get("REAL_KEEP_LAB") != "1":
            lab.down(quiet=True)


if __name__ == "__main__":
    sys.exit(main())
