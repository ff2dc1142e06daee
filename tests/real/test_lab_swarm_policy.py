#!/usr/bin/python3
"""`unit`: the real-peer lab's policies for swarms (sandbox/real/lab_swarm.py), no peers, no root."""
import os
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(HERE)), "sandbox"))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(HERE)), "sandbox", "real"))

import lab_swarm  # noqa: E402


class Policies(unittest.TestCase):
    def test_per_user_isolates_each_tenant(self):
        p = lab_swarm.per_user_policy(["hsa", "hsb"])
        self.assertEqual(p["acls"], [{"action": "accept", "src": ["hsa@"], "dst": ["hsa@:*"]},
                                     {"action": "accept", "src": ["hsb@"], "dst": ["hsb@:*"]}])

    def test_probes_names_only_the_tailscaled(self):
        p = lab_swarm.probes_policy({"hsa": {"hsa-1": "100.64.0.1", "hsa-2": "100.64.0.2"},
                                     "hsb": {"hsb-1": "100.65.0.1"}})
        self.assertEqual(p["hosts"], {"hsa-1": "100.64.0.1/32", "hsa-2": "100.64.0.2/32", "hsb-1": "100.65.0.1/32"})
        self.assertEqual(p["acls"][0], {"action": "accept", "src": ["hsa-1", "hsa-2"], "dst": ["hsa-1:*", "hsa-2:*"]})
        # No rule names a user: a swarm device (its user's, not a host) matches none, so it sees no peer.
        self.assertFalse(any(x.endswith("@") for a in p["acls"] for x in a["src"]))

    def test_isolated_matches_no_lab_address(self):
        self.assertEqual(lab_swarm.ISOLATED["hosts"], {"nobody": "192.0.2.1/32"})


if __name__ == "__main__":
    unittest.main()
