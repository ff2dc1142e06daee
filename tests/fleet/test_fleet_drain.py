"""Fleet tier: drain_cluster.yml restarts each target ONCE for all the tenants it moves (issue 22).

The lab's stand-ins cache their nodes (rows copied into their database are served only after a reload) and
their reload acts as headscale's restart (every control stream dropped), as on headscale >= 0.27. Two tenants
are drained off node 3 onto node 4 across two proxy hosts; node 4 has devices of its own. Asserted from the
stand-ins themselves (GET /health: `reloads`), from each device's record (disconnects, rejections, the cluster
serving it) and from each proxy host's HAProxy map; headshift's journal last, as the operator sees it.
"""
import os
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import test_fleet_ansible as base  # noqa: E402

MOVED = ("hsa", "hsb")  # on node 3, drained
OWN = "hsd"             # on node 4, the target: its devices are what the target's restart drops


class FleetDrainBatch(base.FleetCase):
    LAB_NAME = "fd"
    LAB_UP = {"hosts": 2, "devices": 3,
              "sandbox_args": ["--tenant", "hsa:3:4", "--tenant", "hsb:3:3", "--tenant", "hsd:4:3",
                               "--lookup", "cached", "--reload-drops-sessions"]}

    def test_drain_restarts_the_target_once(self):
        for t in MOVED:
            self.assertEqual(self.where(t), "3", t)
        self.assertEqual(self.where(OWN), "4")
        for c in ("3", "4"):
            self.assertEqual(self.lab.health(c)["reloads"], 0, c)
        self.assertTrue(all(d["disconnects"] == 0 for d in self.devices().values()))

        p = self.playbook("drain_cluster.yml", "-e", "cluster=3")
        self.assert_ok(p, "drain_cluster.yml")

        # the stand-ins: the target restarted once for both tenants, the drained node never
        self.assertEqual(self.lab.health("4")["reloads"], 1, self.lab.health("4"))
        self.assertEqual(self.lab.health("3")["reloads"], 0, self.lab.health("3"))
        # every moved device: routed to the target on every host, back there, reset exactly once (its cut),
        # never rejected (the target served its copied row when it redialed)
        for t in MOVED:
            self.assertEqual(self.where(t), "4", t)
            devs = self.lab.wait_connected(t, "4", timeout=60)
            self.assertEqual({d["disconnects"] for d in devs}, {1}, devs)
            self.assertEqual(sum(d["rejections"] for d in devs), 0, devs)
        # the target's own devices: dropped once by the one restart, back on it
        devs = self.lab.wait_connected(OWN, "4", timeout=60)
        self.assertEqual({d["disconnects"] for d in devs}, {1}, devs)
        self.assertEqual(sum(d["rejections"] for d in devs), 0, devs)

        # the journal: one migration per tenant, complete, copied once, its cut recorded as the proxy
        # hosts' and its wait for the target's restart as the batch's (no reload of its own)
        for t in MOVED:
            ms = self.journal(t)
            self.assertEqual([m["state"] for m in ms], ["complete"], ms)
            steps = {s["step"]: s for s in ms[0]["steps"]}
            self.assertLessEqual(steps["copy"].get("details", {}).get("attempts", 1), 1, steps["copy"])
            ext = [s["step"] for s in ms[0]["steps"] if s.get("details", {}).get("external")]
            self.assertEqual(ext, ["snapshot_sessions", "switch_route", "route_live", "reset_sessions"])
            ready = steps["target_ready"]["details"]
            self.assertIs(ready["reloaded"], False, ready)

        # a re-run converges: nothing to prepare, nobody restarted or reset again
        p = self.playbook("drain_cluster.yml", "-e", "cluster=3")
        self.assert_ok(p, "second run of drain_cluster.yml")
        self.assertEqual(self.lab.health("4")["reloads"], 1)
        for t in MOVED + (OWN,):
            self.assertEqual({d["disconnects"] for d in self.devices(t).values()}, {1}, t)
        self.assertEqual([m["state"] for m in self.journal("hsa")], ["complete"])


if __name__ == "__main__":
    unittest.main()
