"""Fleet tier: drain_cluster.yml restarts each target ONCE for all the tenants it moves (issue 22).

The lab's stand-ins cache their nodes (rows copied into their database are served only after a reload) and
their reload acts as headscale's restart (every control stream dropped), as on headscale >= 0.27. Two tenants
are drained off node 3 onto node 4 across two proxy hosts (node 4 has devices of its own), then moved on to
node 5 with `headshift migrate T1 T2 --to 5` and migrate_tenant.yml. Asserted from the
stand-ins themselves (GET /health: `reloads`), from each device's record (disconnects, rejections, the cluster
serving it) and from each proxy host's HAProxy map; headshift's journal last, as the operator sees it.
"""
import json
import os
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import test_fleet_ansible as base  # noqa: E402

MOVED = ("hsa", "hsb")  # on node 3, drained
OWN = "hsd"             # on node 4, the target: its devices are what the target's restart drops
OWN5 = "hse"            # on node 5, where test_2 moves the drained tenants on


class FleetDrainBatch(base.FleetCase):
    LAB_NAME = "fd"
    LAB_UP = {"hosts": 2, "devices": 3, "clusters": ("3", "4", "5"),
              "sandbox_args": ["--tenant", "hsa:3:4", "--tenant", "hsb:3:3", "--tenant", "hsd:4:3",
                               "--tenant", "hse:5:2", "--lookup", "cached", "--reload-drops-sessions"]}

    def test_1_drain_restarts_the_target_once(self):
        for t in MOVED:
            self.assertEqual(self.where(t), "3", t)
        self.assertEqual(self.where(OWN), "4")
        for c in ("3", "4", "5"):
            self.assertEqual(self.lab.health(c)["reloads"], 0, c)
        self.assertTrue(all(d["disconnects"] == 0 for d in self.devices().values()))

        p = self.playbook("drain_cluster.yml", "-e", "cluster=3", "-e", "to=4")
        self.assert_ok(p, "drain_cluster.yml")

        # the stand-ins: the target restarted once for both tenants, the drained node never
        self.assertEqual(self.lab.health("4")["reloads"], 1, self.lab.health("4"))
        self.assertEqual(self.lab.health("3")["reloads"], 0, self.lab.health("3"))
        self.assertEqual(self.lab.health("5")["reloads"], 0, self.lab.health("5"))
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
        self.assertEqual({d["disconnects"] for d in self.devices(OWN5).values()}, {0})  # node 5: untouched

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
        p = self.playbook("drain_cluster.yml", "-e", "cluster=3", "-e", "to=4")
        self.assert_ok(p, "second run of drain_cluster.yml")
        self.assertEqual(self.lab.health("4")["reloads"], 1)
        for t in MOVED + (OWN,):
            self.assertEqual({d["disconnects"] for d in self.devices(t).values()}, {1}, t)
        self.assertEqual([m["state"] for m in self.journal("hsa")], ["complete"])

    def test_2_migrate_several_prepares_them_with_one_restart(self):
        """`headshift migrate T1 T2 --to 5` on the control host of a fleet: both prepared with one restart of
        5 and left paused before their cut (exit 0, their ids in the report); `resume` of one changes nothing
        and reports it again; migrate_tenant.yml then finds each and runs its cut and finish."""
        q = self.lab.hs("--json", "migrate", *MOVED, "--to", "5", "--yes")
        self.assertEqual(q.returncode, 0, q.stdout + q.stderr)
        rep = json.loads(q.stdout)
        ready = {m["tenant"]: m for m in rep["paused_before_cut"]}
        self.assertEqual(set(ready), set(MOVED), rep)
        self.assertEqual((rep["completed"], rep["paused"], rep["failed"]), ([], [], []), rep)
        self.assertEqual(rep["target_restarts"], {"5": 1}, rep)
        self.assertEqual(self.lab.health("5")["reloads"], 1)
        for t in MOVED:  # nothing cut: still routed to 4 on every host, nobody reset
            self.assertEqual(self.where(t), "4")
            self.assertEqual(ready[t]["next_step"], "snapshot_sessions")
            self.assertTrue(ready[t]["client_addresses"], ready[t])
            self.assertEqual({d["disconnects"] for d in self.devices(t).values()}, {1}, t)
        # the same command again adopts both (no second copy, no second restart), and reports them again
        q = self.lab.hs("--json", "migrate", *MOVED, "--to", "5", "--yes")
        self.assertEqual(q.returncode, 0, q.stdout + q.stderr)
        rerun = json.loads(q.stdout)
        self.assertEqual({m["tenant"]: m["id"] for m in rerun["paused_before_cut"]},
                         {t: m["id"] for t, m in ready.items()}, rerun)
        self.assertEqual(self.lab.health("5")["reloads"], 1)
        mid = ready["hsa"]["id"]
        q = self.lab.hs("--json", "resume", mid)
        again = json.loads(q.stdout)
        self.assertEqual((q.returncode, again["id"], again["state"], again["next_step"]),
                         (0, mid, "paused", "snapshot_sessions"), q.stdout + q.stderr)
        for t in MOVED:
            p = self.playbook("migrate_tenant.yml", "-e", f"tenant={t}", "-e", "to=5")
            self.assert_ok(p, f"migrate_tenant.yml {t}")
            self.assertIn(f"migration {ready[t]['id']} complete", p.stdout)
            devs = self.lab.wait_connected(t, "5", timeout=60)
            self.assertEqual({d["disconnects"] for d in devs}, {2}, devs)
            self.assertEqual(sum(d["rejections"] for d in devs), 0, devs)
        self.assertEqual(self.lab.health("5")["reloads"], 1)
        self.assertEqual({d["disconnects"] for d in self.devices(OWN5).values()}, {1})  # the one restart
        self.assertEqual({d["disconnects"] for d in self.devices(OWN).values()}, {1})


if __name__ == "__main__":
    unittest.main()
