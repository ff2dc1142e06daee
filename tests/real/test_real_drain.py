#!/usr/bin/python3
"""`real` tier: draining a node restarts each target once, asserted from the nodes' start times and the devices'
own records.

The lab (sandbox/real/reallab.py): headscale nodes 3, 4 and 5; node 3 holds three tenants (hsa, hsb, hsc), node
4 holds hsd and node 5 hse, each tenant REAL_DRAIN_SWARM swarm devices (default 40) + 1 tailscaled.
`headshift drain 3 --to 4,5` moves hsa, hsb and hsc away (headscale >= 0.27 loads rows it did not write only
at start, so every target must restart: once for the whole batch). Then:
  - every tenant of node 3 is on node 4 or 5 (rows), both targets got at least one, none is left on 3;
  - from the start times the lab records for every headscale start (<state>/hs<C>/starts.jsonl, written by
    `reallab.py restart-node`, the clusters' reload_command): each target started exactly once during the
    drain;
  - from the records of the targets' own devices (hsd on 4, hse on 5): each lost its control connection exactly
    once during the drain (that one restart), and got its netmap back;
  - every moved device got a netmap after the drain with its node key and ID, is online on its new node's API,
    and nobody (any tenant) was asked to log in again;
  - the report agrees: target_restarts says 1 for each target.

Run: flock /tmp/headshift-lab.lock ctest -L real -R real_drain (or python3 -m unittest -v test_real_drain)
Env: HEADSHIFT_BIN, HEADSHIFT_PEERS_DIR, REAL_DRAIN_SWARM, REAL_KEEP_LAB=1 (leave the lab up).
"""
import json
import os
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "sandbox", "real"))

import observe  # noqa: E402
from lab_suite import LabSuite  # noqa: E402
from observed_move import observed_move  # noqa: E402

HEADSHIFT = os.environ.get("HEADSHIFT_BIN", os.path.join(REPO, "build", "cli", "headshift"))
SWARM = int(os.environ.get("REAL_DRAIN_SWARM", "40"))
MOVED = ("hsa", "hsb", "hsc")
STAYING = {"hsd": "4", "hse": "5"}


class RealDrain(LabSuite):
    NAME = "rd"
    PEERS = LabSuite.PEERS + ("swarm",)

    @classmethod
    def up(cls, lab):
        lab.up(5, 1, ["3", "4", "5"], "traefik", swarm=SWARM, policy="probes", tagged=0,
               homes={"hsa": "3", "hsb": "3", "hsc": "3", **STAYING})

    def test_drain_restarts_each_target_once(self):
        lab = self.lab
        lab.load()
        self.assertEqual({t: ti["home"] for t, ti in lab.info["tenants"].items()},
                         {"hsa": "3", "hsb": "3", "hsc": "3", "hsd": "4", "hse": "5"})
        lab.wait_online(timeout=300)
        before = {t: {d: (x.node_key, x.node_id) for d, x in lab.swarm(t).timelines().items()} for t in MOVED}
        argv = [HEADSHIFT, "--config", lab.info["config"], "--json", "drain", "3", "--to", "4,5"]
        # observed_move watches every device of every tenant; "hsa"/"4" only name whose probe and API view it
        # reports, which this test does not use (the drain decides each tenant's target).
        res = observed_move(lab, "hsa", "4", argv, timeout=900, reconnect_wait_s=180)
        ended_at = time.time()
        self.assertEqual(res["exit_code"], 0, res["stderr"][-2000:])
        report = res["report"] or {}
        self.assertTrue(report.get("ok"), json.dumps(report)[:2000])

        # Where each tenant went, from the nodes' own rows.
        placed = {}
        for t in MOVED:
            self.assertEqual(lab.tenant_node_rows("3", t), 0, f"{t} still has rows on node 3")
            on = [c for c in ("4", "5") if lab.tenant_node_rows(c, t) == SWARM + 1]
            self.assertEqual(len(on), 1, f"{t}: rows on {on}")
            placed[t] = on[0]
        targets = sorted(set(placed.values()))
        self.assertEqual(targets, ["4", "5"], f"the drain used {targets} only: {placed}")

        # Each target's headscale started exactly once during the drain.
        lab.load()
        starts = {c: lab.node_starts(c, since=res["started_at"]) for c in ("3", "4", "5")}
        starts = {c: [s for s in v if s["t"] <= ended_at] for c, v in starts.items()}
        for c in targets:
            self.assertEqual(len(starts[c]), 1, f"node {c} started {len(starts[c])} times during the drain: "
                                                f"{starts[c]} (placement {placed})")

        # The targets' own devices: disconnected exactly once (their node's one restart), and back.
        for t, c in STAYING.items():
            w = res["swarm_watch"][t]
            for d in w.devices:
                iv = w.interruptions_ms(d)
                self.assertEqual(len(iv), 1, f"{d} (on target {c}): {len(iv)} interruptions during the drain: {iv}")
                self.assertIsNotNone(iv[0], f"{d} (on target {c}) did not get its netmap back")
            for d in lab.devices(t):  # its tailscaled, from its own log
                self.assertNotIn(d, res["tenants"][t]["unrecovered"])

        # Every moved device is back on its new node, same identity; nobody asked to log in again.
        for t in MOVED:
            w = res["swarm_watch"][t]
            online = observe.online_on_node(lab, placed[t], t)
            for d, ident in before[t].items():
                nms = [r for r in w.netmaps[d] if r["t"] / 1000.0 >= res["started_at"]]
                self.assertTrue(nms, f"{d}: no netmap after the drain")
                self.assertEqual({(r["node_key"], r["node_id"]) for r in nms}, {ident}, d)
                self.assertTrue(online.get(d), f"{d}: not online on node {placed[t]}'s API")
            for d in lab.devices(t):
                self.assertTrue(online.get(d), f"{d}: not online on node {placed[t]}'s API")
        for t, s in res["tenants"].items():
            self.assertEqual(s["reauth"], [], t)
            self.assertEqual(s.get("identity_changed", []), [], t)
            self.assertEqual(s["unrecovered"], [], t)
        self.assertEqual(res["identity"], {})
        self.assertEqual(res["registrations"], [])

        # The report counts the same restarts the nodes' start times show.
        reported = {c: n for c, n in (report.get("target_restarts") or {}).items() if n}
        self.assertEqual(reported, {c: 1 for c in targets}, json.dumps(report)[:2000])
        print(json.dumps({"placement": placed, "starts": {c: len(v) for c, v in starts.items()},
                          "target_restarts": report.get("target_restarts"), "elapsed_ms": res["elapsed_ms"],
                          "interruption_ms": {t: res["tenants"][t]["interruption_ms"] for t in res["tenants"]}}),
              file=sys.stderr)


if __name__ == "__main__":
    unittest.main()
