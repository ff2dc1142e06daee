#!/usr/bin/python3
"""Fleet benchmark: one tenant moved by playbooks/ansible/migrate_tenant.yml across 1, 3 and 5 proxy hosts.

For each host count (same run, same sizes) it brings up a fleet lab (tests/fleet/fleetlab.py: proxy hosts as
network namespaces with sshd + real HAProxy, real Ansible over real SSH, the sandbox's stand-in headscale nodes
and devices), runs the playbook once per round and measures:
  total      wall time of `ansible-playbook` (preflight on every host, copy..target_ready, the cut on every
             host, reconnected..complete)
  interruption per device of the tenant, as the devices saw it (disconnect -> reconnected through the new
             route, from their own records): p50 / p99 / max
  collateral the other tenants' devices that lost their control stream (expected 0)
Timings are reported as ratios against the 1-host run of the same script (the anchor), never asserted.
Usage: bench/fleet/run.py [--hosts 1,3,5] [--tenants 3] [--devices 60] [--rounds 3] [--json out.json]
"""
import argparse
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "tests", "fleet"))
import fleetlab  # noqa: E402

ANSIBLE_DIR = os.path.join(REPO, "playbooks", "ansible")


def pct(xs, p):
    if not xs:
        return None
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100.0 * (len(xs) - 1))))]


def one_move(lab, tenant, to):
    before = {c["name"]: len(c["events"]) for c in lab.clients()}
    others_before = {c["name"]: c["disconnects"] for c in lab.clients() if c["tenant"] != tenant}
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ANSIBLE_DIR, "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    t0 = time.monotonic()
    p = subprocess.run(["ansible-playbook", "-i", lab.info["inventory"], os.path.join(ANSIBLE_DIR, "migrate_tenant.yml"),
                        "-e", f"tenant={tenant}", "-e", f"to={to}"], env=env, text=True, capture_output=True)
    total_s = time.monotonic() - t0
    if p.returncode != 0:
        raise RuntimeError(f"migrate_tenant.yml failed:\n{p.stdout[-4000:]}")
    devs = lab.wait_connected(tenant, to, timeout=60)
    time.sleep(1.2)  # the devices rewrite their records once a second
    interruptions, reauth = [], 0
    for c in lab.clients():
        if c["tenant"] == tenant:
            for d, r in c["events"][before[c["name"]]:]:
                if r is not None and r >= 0:
                    interruptions.append(r - d)
            reauth += c["rejections"]
    collateral = sum(1 for c in lab.clients() if c["tenant"] != tenant and c["disconnects"] > others_before[c["name"]])
    mig = json.loads(lab.hs("status", tenant, "--json", check=True).stdout)["migrations"][0]
    return {"total_s": round(total_s, 2), "migration": mig["id"], "state": mig["state"], "devices": len(devs),
            "interruptions": len(interruptions), "p50_ms": pct(interruptions, 50), "p99_ms": pct(interruptions, 99),
            "max_ms": max(interruptions) if interruptions else None, "rejections": reauth, "collateral": collateral}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--hosts", default="1,3,5")
    ap.add_argument("--tenants", type=int, default=3)
    ap.add_argument("--devices", type=int, default=60)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--json")
    a = ap.parse_args()
    results = {}
    for n in [int(x) for x in a.hosts.split(",")]:
        lab = fleetlab.FleetLab("bf")
        try:
            lab.up(hosts=n, tenants=a.tenants, devices=a.devices)
            clusters = lab.info["clusters"]
            home = lab.host_map("p1")["hsa.demo.com"].replace("headscale-cluster", "")
            runs = []
            for r in range(a.rounds):  # there and back: each round moves hsa to the other node
                to = next(c for c in clusters if c != home)
                res = one_move(lab, "hsa", to)
                runs.append(res)
                print(f"{n} host(s) round {r + 1}: {json.dumps(res)}", flush=True)
                home = to
            results[n] = runs
        finally:
            lab.down()
    # Round 1 is cold: it also copies the headshift binary to every proxy host (headshift_install; the
    # RelWithDebInfo build is large). The later rounds are the move itself; ratios use them.
    def warm(runs):
        return runs[1:] or runs

    anchor = warm(results[min(results)])
    a_total = sum(r["total_s"] for r in anchor) / len(anchor)
    a_p99 = sum(r["p99_ms"] for r in anchor) / len(anchor)
    size_mb = os.path.getsize(fleetlab.HS) / 1e6
    print(f"\n(round 1 also installs the {size_mb:.0f} MB headshift binary on every host; ratios: rounds 2+ against "
          f"the {min(results)}-host run)")
    print("hosts  cold_s  warm total_s  ratio_total  p99_ms (per round)  ratio_p99  max_ms  rejections  collateral")
    summary = {}
    for n, runs in results.items():
        w = warm(runs)
        tot = sum(r["total_s"] for r in w) / len(w)
        p99 = sum(r["p99_ms"] for r in w) / len(w)
        summary[n] = {"runs": runs, "cold_s": runs[0]["total_s"], "warm_total_s": round(tot, 2),
                      "ratio_total": round(tot / a_total, 2), "ratio_p99": round(p99 / a_p99, 2) if a_p99 else None}
        print(f"{n:5d}  {runs[0]['total_s']:6.2f}  {'/'.join(str(r['total_s']) for r in w):12s}  {tot / a_total:11.2f}  "
              f"{'/'.join(str(r['p99_ms']) for r in runs):18s}  {summary[n]['ratio_p99'] or 0:9.2f}  "
              f"{max(r['max_ms'] for r in runs):6d}  {sum(r['rejections'] for r in runs):10d}  "
              f"{sum(r['collateral'] for r in runs):10d}")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"args": vars(a), "results": summary}, f, indent=2)


if __name__ == "__main__":
    main()
