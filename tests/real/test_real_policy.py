#!/usr/bin/python3
"""`real` tier: a tenant kept apart by the nodes' ACL policies moves whole, on real headscale v0.29 nodes and
real tailscaled devices (sandbox/real, lab_policy.py): per-user rules on each node for the tenants homed there
(node 3: hsa and hsc, node 4: hsb), hsa with a tagged server hsa-srv (user-less, tag:hsa-srv owned by hsa@).

Asserted from the devices (`tailscale status --json` peers, TSMP pings through WireGuard) and from the nodes
(their API, GET /api/v1/policy, their database): the move keeps the tenant's tailnet (its tagged server
included, served by the target), other tenants see none of its devices, a rule mixing two tenants is refused
with nothing changed, a rollback after the cut restores both policies exactly, no node keeps a ghost of the
tenant, and a move back works. One lab per suite: PolicyFileMigration (policy files + SIGHUP),
PolicyDatabaseMigration (policy.mode database, SetPolicy) and PolicySelfMigration (autogroup:self).

Run: flock /tmp/headshift-lab.lock ctest -L real (or python3 -m unittest -v test_real_policy in tests/real).
"""
import copy
import json
import os
import subprocess
import sys
import time
import unittest

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from test_real_migration import HEADSHIFT, RealPeerLab, hs, js  # noqa: E402  (puts sandbox/real on the path)
import observe  # noqa: E402
from observed_move import observed_move  # noqa: E402


class PolicyLab(RealPeerLab):
    EDGE = "traefik"
    TENANTS = 3
    DEVICES = 3
    POLICY = "per-user"
    TAGGED = 1

    # ---- what the nodes say --------------------------------------------------------------------------
    def policies(self):
        return {c: self.lab.node_policy(c) for c in ("3", "4")}

    def rows(self):
        return {c: self.lab.psql(f"hs{c}", "SELECT id, given_name, coalesce(user_id::text, '-'), coalesce(tags, '-'),"
                                           " node_key FROM nodes WHERE deleted_at IS NULL ORDER BY id")
                for c in ("3", "4")}

    def listed(self, c, tenant):
        """The tenant's devices node c's API lists (by name; tagged servers included), with `online`."""
        mine = set(self.lab.devices(tenant))
        return {n: o for n, o in observe.online_on_node(self.lab, c).items() if n in mine}

    def move(self, tenant, to, *extra):
        return observed_move(self.lab, tenant, to, [HEADSHIFT, "--config", self.lab.info["config"], "--json",
                                                   "migrate", tenant, "--to", to, "--yes"] + list(extra))

    # ---- what the devices say ------------------------------------------------------------------------
    def assert_tailnet(self, tenant, on):
        """tenant's devices, all served by node `on`, see each other and reach each other over WireGuard
        (TSMP from its first device to every other, the tagged server included); other tenants' devices see
        none of them; the other node lists none of them (no ghost)."""
        lab = self.lab
        mine = lab.devices(tenant)
        listed = self.listed(on, tenant)
        self.assertEqual(sorted(listed), sorted(mine), f"node {on} does not list all of {tenant}")
        self.assertTrue(all(listed.values()), f"not online on node {on}: {listed}")
        other_node = "4" if on == "3" else "3"
        self.assertEqual(self.listed(other_node, tenant), {}, f"ghosts of {tenant} on node {other_node}")

        def peers_settled():
            return all(set(mine) - {d} <= set(lab.device_peers(d)) for d in mine)
        deadline = time.monotonic() + 30
        while not peers_settled() and time.monotonic() < deadline:
            time.sleep(0.5)
        for d in mine:
            self.assertLessEqual(set(mine) - {d}, set(lab.device_peers(d)), f"{d} lost a peer of its tenant")
        for other in lab.devices():
            if other.rsplit("-", 1)[0] != tenant:
                seen = set(lab.device_peers(other)) & set(mine)
                self.assertEqual(seen, set(), f"{other} (another tenant) sees {tenant}'s devices")
        for d in mine[1:]:
            self.assertTrue(observe.DataProbe(lab, mine[0], d).warm_up(timeout=30),
                            f"{mine[0]} cannot reach {d} over WireGuard (TSMP)")

    def assert_policy_on(self, tenant, on):
        """Node `on` carries the tenant's rules and tag; the other node's policy no longer names it."""
        pol = self.policies()
        other_node = "4" if on == "3" else "3"
        self.assertIn(f'"{tenant}@"', pol[on])
        self.assertIn(f"tag:{tenant}-srv", pol[on])
        self.assertNotIn(f"{tenant}@", pol[other_node], f"node {other_node} keeps {tenant}'s rules")
        self.assertNotIn(f"tag:{tenant}-srv", pol[other_node])

    # ---- the tests -----------------------------------------------------------------------------------
    def test_1_isolated_before_and_plan_shows_policy(self):
        self.assert_tailnet("hsa", "3")
        self.assert_policy_on("hsa", "3")
        t0 = time.monotonic()
        p = hs(self.lab, "plan", "hsa", "--to", "4")
        ms = (time.monotonic() - t0) * 1000
        self.assertEqual(p.returncode, 0, p.stdout[-2000:] + p.stderr[-2000:])
        plan = js(p)
        text = json.dumps(plan)
        self.assertIn("tag:hsa-srv", text, "plan does not show the tenant's tag moving")
        # Without debug_url: the same plan, for the cost of the parity reads (printed, never asserted).
        with open(self.lab.info["config"]) as f:
            cfg = yaml.safe_load(f)
        for c in cfg["clusters"]:
            c.pop("debug_url", None)
        bare = self.lab.path("headshift-nodebug.yaml")
        with open(bare, "w") as f:
            yaml.safe_dump(cfg, f)
        t0 = time.monotonic()
        q = subprocess.run([HEADSHIFT, "--config", bare, "--json", "plan", "hsa", "--to", "4"], capture_output=True,
                           text=True, timeout=120)
        ms_bare = (time.monotonic() - t0) * 1000
        self.assertEqual(q.returncode, 0, q.stdout[-1500:])
        sys.stderr.write(f"\n[policy lab {self.POLICY_MODE}] plan with debug_url {ms:.0f} ms, without {ms_bare:.0f} ms;"
                         f" parity: {json.dumps(plan.get('parity'))[:1500]}\n")

    def test_2_mixed_rule_is_refused_and_nothing_changes(self):
        lab = self.lab
        orig = lab.node_policy("3")
        pol = json.loads(orig)
        mixed = {"action": "accept", "src": ["hsa@", "hsc@"], "dst": ["hsa@:*"]}
        bad = copy.deepcopy(pol)
        bad["acls"].append(mixed)
        lab.set_policy_text("3", json.dumps(bad, indent=2) + "\n")
        try:
            before_pol, before_rows = self.policies(), self.rows()
            pid4 = lab.load()["pids"]["headscale-4"]
            res = self.move("hsa", "4")
            self.assertEqual(res["exit_code"], 3, res["stdout"][-2000:] + res["stderr"][-1000:])
            self.assertIn(f"acls[{len(bad['acls']) - 1}]", res["stdout"], "the refusal does not name the rule")
            self.assertIn("hsc@", res["stdout"])
            self.assertEqual(self.policies(), before_pol, "a policy changed for a refused move")
            self.assertEqual(self.rows(), before_rows, "rows changed for a refused move")
            self.assertEqual(lab.load()["pids"]["headscale-4"], pid4, "node 4 restarted for a refused move")
            self.assert_untouched(res, "hsa")
        finally:
            lab.set_policy_text("3", orig)

    def test_3_isolated_move_keeps_the_tailnet(self):
        res = self.move("hsa", "4")
        self.assert_moved(res, "hsa", "3", "4")
        report = res["report"] or {}
        tn = report.get("tailnet") or {}
        self.assertTrue(tn.get("checked"), f"tailnet not compared: {tn}")
        self.assertEqual(tn.get("differences"), 0, tn)
        sys.stderr.write(f"\n[policy lab {self.POLICY_MODE}] move: timings_ms {json.dumps(report.get('timings_ms'))}; "
                         f"tailnet {json.dumps(tn)}; ghosts {json.dumps(report.get('ghosts'))}\n")
        self.assertIn("hsa-srv", res["online_on_target"], "the tagged server is not served by node 4")
        self.assert_policy_on("hsa", "4")
        self.assert_tailnet("hsa", "4")
        # hsb shares node 4 with hsa now: still apart.
        self.assertEqual(set(self.lab.device_peers("hsb-1")) & set(self.lab.devices("hsa")), set())

    def test_4_rollback_after_cut_restores_policies_and_tailnet(self):
        lab = self.lab
        before_pol, before_rows = self.policies(), self.rows()
        p = hs(lab, "migrate", "hsa", "--to", "3", "--yes", "--until", "reset_sessions")
        out = js(p)
        mid = out.get("id")
        self.assertTrue(mid, p.stdout[-1500:])
        self.assertIn("hsa@", lab.node_policy("3"), "the policy step did not give node 3 hsa's rules")
        r = hs(lab, "rollback", mid)
        self.assertEqual(r.returncode, 0, r.stdout[-2000:] + r.stderr[-1000:])
        self.assertEqual(self.policies(), before_pol, "rollback did not restore both policies exactly")
        self.assertEqual(self.rows(), before_rows, "rollback did not restore the rows")
        lab.wait_online()
        self.assert_tailnet("hsa", "4")

    def test_5_move_back_is_served_from_fresh_rows(self):
        res = self.move("hsa", "3")
        self.assert_moved(res, "hsa", "4", "3")
        self.assert_policy_on("hsa", "3")
        self.assert_tailnet("hsa", "3")
        ghosts = (res["report"] or {}).get("ghosts") or {}
        self.assertEqual(ghosts.get("stragglers"), [], ghosts)
        # Node 3 lists each of hsa's devices once, with the node key the device itself has now.
        nodes = [n for n in self.lab.node_api("3", "/api/v1/node")["nodes"]
                 if (n.get("givenName") or n.get("name")) in set(self.lab.devices("hsa"))]
        self.assertEqual(len(nodes), len(self.lab.devices("hsa")))
        for n in nodes:
            dev = n.get("givenName") or n.get("name")
            self.assertEqual(n.get("nodeKey"), self.lab.device_status(dev)["node_key"], dev)


class PolicyFileMigration(PolicyLab):
    NAME = "rpf"
    POLICY_MODE = "file"


class PolicyDatabaseMigration(PolicyLab):
    NAME = "rpd"
    POLICY_MODE = "database"

    # One move each way is enough here: the refusal and the rollback do not depend on the policy mode
    # beyond ApplyPolicy, which the move and the rollback in file mode, and this move, exercise.
    test_2_mixed_rule_is_refused_and_nothing_changes = None
    test_4_rollback_after_cut_restores_policies_and_tailnet = None


class PolicySelfMigration(PolicyLab):
    """autogroup:self on both nodes (generic: nothing of it moves, the target must carry it identically), hsa's
    tag rules per tenant. The move must keep the tailnet although headscale's global filter, which the
    tailnet step compares, holds none of the autogroup:self grants: the devices are the proof here."""
    NAME = "rps"
    POLICY = "autogroup-self"
    POLICY_MODE = "database"
    TENANTS = 2
    test_2_mixed_rule_is_refused_and_nothing_changes = None
    test_4_rollback_after_cut_restores_policies_and_tailnet = None
    test_5_move_back_is_served_from_fresh_rows = None


del PolicyLab  # only its subclasses run

if __name__ == "__main__":
    unittest.main(verbosity=2)
