#!/usr/bin/python3
"""`unit`: the real-peer lab's ACL policies (sandbox/real/lab_policy.py), no peers, no root: which rules each
node gets for the tenants homed there, tagged servers, and the flags' checks."""
import os
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "sandbox"))
sys.path.insert(0, os.path.join(REPO, "sandbox", "real"))

from labkit import LabError  # noqa: E402
from lab_policy import PolicyMixin, check_policy_args  # noqa: E402


class FakeLab(PolicyMixin):
    def __init__(self, kind, tagged=()):
        self.info = {"acl_policy": {"kind": kind, "mode": "file"},
                     "tenants": {"hsa": {"home": "3"}, "hsb": {"home": "4"}, "hsc": {"home": "3"}}}
        for t in tagged:
            self.info["tenants"][t]["tags"] = [f"tag:{t}-srv"]


class LabPolicyTest(unittest.TestCase):
    def test_per_user_names_only_the_node_users(self):
        lab = FakeLab("per-user")
        p3, p4 = lab.lab_policy("3"), lab.lab_policy("4")
        self.assertEqual(p3["acls"], [{"action": "accept", "src": ["hsa@"], "dst": ["hsa@:*"]},
                                      {"action": "accept", "src": ["hsc@"], "dst": ["hsc@:*"]}])
        self.assertEqual(p4["acls"], [{"action": "accept", "src": ["hsb@"], "dst": ["hsb@:*"]}])
        self.assertNotIn("tagOwners", p3)

    def test_tagged_server_owned_by_its_tenant_on_its_home_node(self):
        lab = FakeLab("per-user", tagged=["hsa"])
        p3, p4 = lab.lab_policy("3"), lab.lab_policy("4")
        self.assertEqual(p3["tagOwners"], {"tag:hsa-srv": ["hsa@"]})
        self.assertIn({"action": "accept", "src": ["hsa@"], "dst": ["tag:hsa-srv:*"]}, p3["acls"])
        self.assertIn({"action": "accept", "src": ["tag:hsa-srv"], "dst": ["hsa@:*"]}, p3["acls"])
        self.assertNotIn("tag:hsa-srv", str(p4))

    def test_autogroup_self_is_the_same_generic_rule_on_every_node(self):
        lab = FakeLab("autogroup-self")
        rule = {"action": "accept", "src": ["autogroup:member"], "dst": ["autogroup:self:*"]}
        self.assertEqual(lab.lab_policy("3")["acls"], [rule])
        self.assertEqual(lab.lab_policy("4")["acls"], [rule])

    def test_none_and_bad_flags(self):
        self.assertIsNone(FakeLab("none").lab_policy("3"))
        with self.assertRaises(LabError):
            check_policy_args("per-tenant", "file")
        with self.assertRaises(LabError):
            check_policy_args("per-user", "db")


if __name__ == "__main__":
    unittest.main(verbosity=2)
