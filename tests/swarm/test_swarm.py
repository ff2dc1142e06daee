#!/usr/bin/python3
"""`real` tier: the swarm (tests/peers/swarm) against real headscale v0.29 behind real Traefik.

Asserted from the peers themselves: headscale's API (nodes list: rows, ids, node keys, online) and the
devices' own records (each device's netmaps, losses, re-authentications, node key and node ID).
  1. N devices register with a pre-auth key: N nodes online in headscale, each device's netmap has N-1 peers
     (allow-all policy) with the node key and ID headscale lists for it.
  2. headscale restarts (every control connection drops): every device loses its connection, gets a netmap
     back with the same node key and ID, and never needs a login.
  3. the swarm restarts (SIGTERM, start): no new node in headscale, same ids and keys, no login asked.
  4. headscale expires one node: that device (and only it) records needs_login, so "no needs_login" in the
     records is evidence, not silence.

Run: flock /tmp/headshift-lab.lock ctest -L real -R swarm, or /usr/bin/python3 -m unittest -v test_swarm
Env: SWARM_TEST_DEVICES (default 100), SWARM_KEEP_LAB=1 keeps the lab for inspection.
"""
import os
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import swarmlab  # noqa: E402  (puts sandbox/real on the path)
import swarm  # noqa: E402

N = int(os.environ.get("SWARM_TEST_DEVICES", "100"))


class SwarmOnRealHeadscale(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        for name in ("headscale", "swarm", "traefik"):
            try:
                swarmlab.peer(name)
            except swarmlab.LabError as e:
                raise unittest.SkipTest(str(e))
        cls.lab = swarmlab.SwarmLab("t").up()
        cls.sw = cls.lab.swarm(N, per_shard=max(1, (N + 1) // 2))  # two shards: the sharding is exercised

    @classmethod
    def tearDownClass(cls):
        try:
            cls.sw.stop()
        finally:
            if os.environ.get("SWARM_KEEP_LAB") != "1":
                cls.lab.down()

    def wait_nodes_online(self, timeout):
        deadline = time.monotonic() + timeout
        nodes = {}
        while time.monotonic() < deadline:
            nodes = self.lab.nodes()
            if len(nodes) >= N and all(n["online"] for n in nodes.values()):
                return nodes
            time.sleep(1)
        off = sorted(k for k, v in nodes.items() if not v["online"])
        self.fail(f"headscale lists {len(nodes)} nodes, not online: {off[:10]}")

    def back_since(self, t0):
        """Every device has a first netmap of a poll after t0 (a session that came back)."""
        def ok(tl):
            return all(any(r["ev"] == "netmap" and r.get("first") and r["t"] >= t0 * 1000 for r in t.records)
                       for t in tl.values())
        return ok

    def test_swarm_registers_reconnects_and_restarts_with_its_identities(self):
        lab, sw = self.lab, self.sw
        devices = sw.devices()
        # ---- 1. registration ----------------------------------------------------------------------------
        sw.start()
        self.assertEqual(len(sw.info["shards"]), 2)
        tl = sw.wait(lambda tl: all(t.peers == N - 1 for t in tl.values()), timeout=600)
        nodes = self.wait_nodes_online(120)
        self.assertEqual(sorted(nodes), sorted(devices), "headscale's nodes are the swarm's devices")
        for d, t in tl.items():
            self.assertEqual(len(t.registrations), 1, f"{d} registered once")
            self.assertEqual(t.node_id, nodes[d]["id"], f"{d}: node id in its netmap vs headscale")
            self.assertEqual(t.node_key, nodes[d]["node_key"], f"{d}: node key in its netmap vs headscale")
            self.assertEqual(t.reauths, [], f"{d} needed a login")
        ids = {d: (nodes[d]["id"], nodes[d]["node_key"]) for d in devices}

        # ---- 2. headscale restart: every connection drops ------------------------------------------------
        watch = swarm.SwarmWatch(sw).start()  # what observe.py / observed_move.py use for swarm devices
        t0 = time.time()
        lab.restart_headscale()
        tl = sw.wait(self.back_since(t0), timeout=600)
        summary = watch.stop().summary()
        self.assertEqual(sorted(summary["disconnected"]), sorted(devices), summary)
        self.assertEqual((summary["unrecovered"], summary["reauth"], summary["identity_changed"]), ([], [], []),
                         summary)
        self.assertGreaterEqual(summary["interruption_ms"]["n"], N, summary)
        for d, t in tl.items():
            after = [r for r in t.records if r["t"] >= t0 * 1000]
            self.assertTrue(any(r["ev"] == "lost" for r in after), f"{d} never lost its connection")
            self.assertEqual(t.interruptions_ms()[-1] is not None, True, f"{d} did not come back")
            maps = [r for r in after if r["ev"] == "netmap"]
            self.assertEqual({(r["node_id"], r["node_key"]) for r in maps}, {ids[d]}, f"{d} changed identity")
            self.assertEqual([r for r in after if r["ev"] in ("needs_login", "auth_url", "key_changed",
                                                              "id_changed", "registered")], [],
                             f"{d} re-authenticated or changed identity")
        nodes = self.wait_nodes_online(120)
        self.assertEqual({d: (n["id"], n["node_key"]) for d, n in nodes.items()}, ids)

        # ---- 3. swarm restart: the identities survive ---------------------------------------------------
        codes = sw.stop()
        self.assertTrue(all(c == 0 for c in codes.values()), f"shards' exit codes after SIGTERM: {codes}")
        t1 = time.time()
        sw.start()
        tl = sw.wait(self.back_since(t1), timeout=600)
        for d, t in tl.items():
            after = [r for r in t.records if r["t"] >= t1 * 1000]
            starts = [r for r in after if r["ev"] == "start"]
            self.assertEqual(len(starts), 1, d)
            self.assertTrue(starts[0]["resumed"], f"{d} did not resume its identity")
            self.assertEqual(starts[0]["node_key"], ids[d][1], f"{d} started with another node key")
            maps = [r for r in after if r["ev"] == "netmap"]
            self.assertEqual({(r["node_id"], r["node_key"]) for r in maps}, {ids[d]}, f"{d} changed identity")
            self.assertEqual([r for r in after if r["ev"] in ("needs_login", "auth_url", "key_changed",
                                                              "id_changed")], [], d)
        nodes = self.wait_nodes_online(120)
        self.assertEqual(len(nodes), N, "a swarm restart created new nodes")
        self.assertEqual({d: (n["id"], n["node_key"]) for d, n in nodes.items()}, ids)

        # ---- 4. the records can show a re-authentication: headscale expires one node -----------------------
        victim = devices[-1]
        t2 = time.time()
        lab.headscale(["nodes", "expire", "-i", str(ids[victim][0])])
        tl = sw.wait(lambda tl: any(r["ev"] == "needs_login" and r["t"] >= t2 * 1000 for r in tl[victim].records),
                     timeout=120)
        others = [d for d, t in tl.items() if d != victim and any(
            r["ev"] in ("needs_login", "auth_url") and r["t"] >= t2 * 1000 for r in t.records)]
        self.assertEqual(others, [], "devices whose node was not expired asked for a login")


if __name__ == "__main__":
    unittest.main()
