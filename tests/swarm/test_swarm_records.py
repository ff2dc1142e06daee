#!/usr/bin/python3
"""`unit` tier: reading swarm records (sandbox/real/swarm.py) without any peer: partial last lines, time
order across shards, interruption pairing, the watch's identity checks."""
import json
import os
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(HERE)), "sandbox", "real"))

import swarm  # noqa: E402


def line(t, dev, ev, **kw):
    return json.dumps(dict(kw, t=t, dev=dev, ev=ev)) + "\n"


class Records(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.sw = swarm.Swarm(self.tmp.name, count=2, prefix="d")
        self.a, self.b = os.path.join(self.tmp.name, "shard-0.jsonl"), os.path.join(self.tmp.name, "shard-1.jsonl")
        self.sw.info["shards"] = [{"record": self.a, "pid": None}, {"record": self.b, "pid": None}]

    def tearDown(self):
        self.tmp.cleanup()

    def test_timelines_skip_a_partial_line_and_pair_losses_with_the_next_netmap(self):
        with open(self.a, "w") as f:
            f.write(line(1000, "d-1", "netmap", node_key="k1", node_id=7, peers=1, first=True))
            f.write(line(5000, "d-1", "lost", in_poll=True))
            f.write(line(5100, "d-1", "lost", in_poll=False))  # a retry: same interruption
            f.write(line(6500, "d-1", "netmap", node_key="k1", node_id=7, peers=1, first=True))
            f.write('{"t": 7000, "dev": "d-1", "ev": "lo')  # still being written
        with open(self.b, "w") as f:
            f.write(line(9000, "d-2", "lost", in_poll=True))
        tl = self.sw.timelines()
        self.assertEqual(tl["d-1"].interruptions_ms(), [1500.0])
        self.assertEqual((tl["d-1"].node_key, tl["d-1"].node_id, tl["d-1"].peers), ("k1", 7, 1))
        self.assertEqual(tl["d-2"].interruptions_ms(), [None])  # never came back
        self.assertEqual(tl["d-2"].netmaps, [])
        self.assertEqual(len(self.sw.records(since=5.05)), 3)

    def test_watch_reads_only_new_records_and_reports_reauth_and_identity_changes(self):
        with open(self.a, "w") as f:
            f.write(line(1000, "d-1", "lost"))  # before the watch: not counted
        w = swarm.SwarmWatch(self.sw, interval=0.01).start()
        now = int(time.time() * 1000)
        with open(self.a, "a") as f:
            f.write(line(now, "d-1", "netmap", node_key="k1", node_id=7, first=True))
            f.write(line(now + 10, "d-1", "lost"))
            f.write(line(now + 300, "d-1", "netmap", node_key="k2", node_id=7, first=True))
        with open(self.b, "a") as f:
            f.write(line(now + 5, "d-2", "needs_login", auth_url=False))
        s = w.stop().summary()
        self.assertEqual(s["disconnected"], ["d-1"])
        self.assertEqual(s["interruption_ms"]["n"], 1)
        self.assertAlmostEqual(s["interruption_ms"]["max"], 290.0, delta=1)
        self.assertEqual(s["reauth"], ["d-2"])
        self.assertEqual(s["identity_changed"], ["d-1"])


if __name__ == "__main__":
    unittest.main()
