#!/usr/bin/python3
"""Measures the swarm on real headscale (swarmlab: headscale v0.29 + SQLite behind Traefik, one namespace):
per size, time for N fresh devices to register and get their netmap, then a headscale restart and each
device's interruption (its `lost` to its next first netmap) as the devices recorded it.

    flock /tmp/headshift-lab.lock /usr/bin/python3 tests/swarm/measure.py 250 500 1000 [--peers]

--peers: allow-all policy (every device sees every other); default: a policy whose only rule matches no
node, so devices see no peers (what one tenant's many isolated devices cost headscale). Prints one JSON
object per size. Not a test: nothing is asserted; figures depend on the machine's load.
"""
import argparse
import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import swarmlab  # noqa: E402
from swarm import percentiles  # noqa: E402

ISOLATED = {"hosts": {"nobody": "192.0.2.1/32"}, "acls": [{"action": "accept", "src": ["nobody"],
                                                            "dst": ["nobody:*"]}]}


def all_first_since(t0):
    return lambda tl: all(any(r["ev"] == "netmap" and r.get("first") and r["t"] >= t0 * 1000 for r in t.records)
                          for t in tl.values())


def measure(n, peers, concurrency, timeout):
    lab = swarmlab.SwarmLab("m").up(policy=None if peers else ISOLATED)
    sw = lab.swarm(n, concurrency=concurrency)
    out = {"devices": n, "policy": "allow-all" if peers else "isolated", "concurrency": concurrency}
    try:
        t0 = time.time()
        sw.start()
        tl = sw.wait(all_first_since(t0), timeout=timeout, interval=1)
        firsts = [min(r["t"] for r in t.records if r["ev"] == "netmap") / 1000 - t0 for t in tl.values()]
        out["register_s"] = {"all": round(max(firsts), 1), "p50": round(sorted(firsts)[len(firsts) // 2], 1)}
        out["headscale_rss_mib_after_register"] = round((lab.rss_kib() or 0) / 1024)
        out["swarm_rss_mib"] = round(sum(_rss(p) for p in sw.pids()) / 1024)
        time.sleep(5)
        t1 = time.time()
        lab.restart_headscale()
        restart_s = time.time() - t1
        tl = sw.wait(all_first_since(t1), timeout=timeout, interval=1)
        back = [max(r["t"] for r in t.records if r["ev"] == "netmap" and r.get("first")) / 1000 - t1
                for t in tl.values()]
        inter = []
        for t in tl.values():
            evs = [e for e in t.events if e[0] >= t1 - 0.001]
            iv = [v for v in _interruptions(evs) if v is not None]
            inter += iv[:1]
        reauth = sum(1 for t in tl.values() if any(e[0] >= t1 and e[1] in ("needs_login", "auth_url")
                                                    for e in t.events))
        changed = sum(1 for t in tl.values() if len(t.node_keys()) != 1 or len(t.node_ids()) != 1)
        out["restart"] = {"headscale_restart_s": round(restart_s, 1),
                          "back_after_restart_cmd_s": {"p50": round(sorted(back)[len(back) // 2], 1),
                                                       "max": round(max(back), 1)},
                          "interruption_ms": percentiles(inter), "reauth": reauth, "identity_changed": changed}
        out["headscale_rss_mib_after_restart"] = round((lab.rss_kib() or 0) / 1024)
        out["nodes_in_headscale"] = len(lab.nodes())
    finally:
        sw.stop()
        lab.down()
    return out


def _interruptions(events):
    from swarm import interruptions_ms
    return interruptions_ms(events)


def _rss(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("sizes", type=int, nargs="+")
    ap.add_argument("--peers", action="store_true")
    ap.add_argument("--concurrency", type=int, default=50)
    ap.add_argument("--timeout", type=float, default=1200)
    a = ap.parse_args()
    for n in a.sizes:
        print(json.dumps(measure(n, a.peers, a.concurrency, a.timeout)), flush=True)


if __name__ == "__main__":
    main()
