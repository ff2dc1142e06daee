"""What every `real` suite shares: one real-peer lab per suite (test class), skipped when the real peers are not
installed (scripts/setup-peers), brought up by the suite's up(lab), taken down after it unless REAL_KEEP_LAB=1.

REQUIRES: sandbox/real on sys.path (the test modules put it there before importing this).
"""
import os
import unittest

import reallab


class LabSuite(unittest.TestCase):
    NAME = None  # the lab's name (its namespaces and state directory derive from it)
    PEERS = ("headscale", "tailscaled", "tailscale", "derper")  # plus "swarm" for suites with swarm devices

    @classmethod
    def up(cls, lab):
        raise NotImplementedError

    @classmethod
    def setUpClass(cls):
        for missing in [p for p in cls.PEERS if not os.access(os.path.join(reallab.PEERS_DIR, "bin", p), os.X_OK)]:
            raise unittest.SkipTest(f"real peer {missing} not installed: run scripts/setup-peers")
        cls.lab = reallab.Lab(cls.NAME)
        cls.up(cls.lab)

    @classmethod
    def tearDownClass(cls):
        if os.environ.get("REAL_KEEP_LAB") != "1":
            cls.lab.down(quiet=True)
