#!/usr/bin/python3
"""`real` tier: headshift against real Traefik / HAProxy, real headscale v0.29 nodes and real tailscaled devices.

Every assertion about the devices comes from the peers themselves (tailscale status --json, tailscaled's own
log, WireGuard probes between devices, headscale's API and database), never from headshift's report; the
report is only checked against what the peers saw.

Run: scripts/test -L real (ctest), or directly: /usr/bin/python3 -m unittest -v tests/real/test_real_migration.py
Env: HEADSHIFT_BIN (default build/cli/headshift), HEADSHIFT_PEERS_DIR, REAL_DEVICES (per tenant, default 10).
"""
import json
import os
import subprocess
import sys
import time
import unittest
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "sandbox", "real"))

import observe  # noqa: E402
from lab_suite import LabSuite  # noqa: E402
from observed_move import observed_move  # noqa: E402

HEADSHIFT = os.environ.get("HEADSHIFT_BIN", os.path.join(REPO, "build", "cli", "headshift"))
DEVICES = int(os.environ.get("REAL_DEVICES", "10"))


def hs(lab, *args, env=None, timeout=300):
    e = dict(os.environ)
    e.update(env or {})
    return subprocess.run([HEADSHIFT, "--config", lab.info["config"], "--json"] + list(args), capture_output=True,
                          text=True, timeout=timeout, env=e)


def js(p):
    try:
        return json.loads(p.stdout)
    except ValueError:
        raise AssertionError(f"not one JSON object on stdout (exit {p.returncode}): {p.stdout[-500:]} {p.stderr[-800:]}")


def target_restart_devices(report):
    """How many devices of other tenants headshift said a target restart would reconnect (None: not said)."""
    tr = (report or {}).get("target_restart") or {}
    if tr.get("restarted"):
        return tr.get("devices_reconnecting")
    return None


def tenant_rows(lab, cluster, tenant):
    """The tenant's node rows on the node: its users' and its tagged servers' (user-less, its tags)."""
    return lab.tenant_node_rows(cluster, tenant)


class RealPeerLab(LabSuite):
    EDGE = "traefik"
    NAME = "rt"
    TENANTS = 3
    DEVICES = DEVICES
    POLICY = "per-user"      # tenants kept apart by the nodes' ACL policies (sandbox/real/lab_policy.py)
    POLICY_MODE = "file"
    TAGGED = 1               # hsa has a tagged server, hsa-srv

    @classmethod
    def up(cls, lab):
        lab.up(cls.TENANTS, cls.DEVICES, ["3", "4"], cls.EDGE, policy=cls.POLICY, policy_mode=cls.POLICY_MODE,
               tagged=cls.TAGGED)

    def setUp(self):
        # Every test starts settled: all devices online on their node (an earlier test's restart may
        # still have devices backing off, which the next move's observer would count as its own).
        self.lab.wait_online()

    # ---- shared checks ---------------------------------------------------------------------------------
    def assert_untouched(self, res, tenant):
        """A refused or rolled-back move: the tenant's devices never lost control, nothing new registered."""
        t = res["tenants"][tenant]
        self.assertEqual(t["disconnected"], [], f"{tenant} devices lost their control connection")
        self.assertEqual(t["reauth"], [])
        mine = {d: why for d, why in res["identity"].items() if d.startswith(tenant + "-")}
        self.assertEqual(mine, {}, "a device of the tenant changed identity or state")
        self.assertEqual(res["registrations"], [])
        self.assertEqual(res["probe"]["lost"], 0)

    def assert_moved(self, res, tenant, source, target):
        lab = self.lab
        t = res["tenants"][tenant]
        n = len(lab.devices(tenant))
        self.assertEqual(res["exit_code"], 0, res["stdout"][-2000:] + res["stderr"][-2000:])
        # The devices themselves: all reconnected (one loss, then a netmap), never asked for a login, kept
        # their identity (Self.ID = node id, node key, tailnet IPs), and are Running.
        self.assertEqual(len(t["disconnected"]), n, f"every device of {tenant} reconnects once: {t}")
        self.assertEqual(t["unrecovered"], [], f"devices that never got a netmap back: {t['unrecovered']}")
        self.assertEqual(t["reauth"], [], "a device asked for a login")
        self.assertEqual(res["identity"], {}, f"identity or state changed: {res['identity']}")
        # WireGuard between two of its devices kept flowing through the whole move.
        self.assertGreater(res["probe"]["sent"], 10)
        self.assertEqual(res["probe"]["lost"], 0, f"lost data probes: {res['probe']}")
        # The target's own API: every device online there; the source holds none of its rows any more.
        online = res["online_on_target"]
        self.assertEqual(sorted(online), sorted(lab.devices(tenant)), online)
        self.assertTrue(all(online.values()), f"not online on {target}: {online}")
        self.assertEqual(tenant_rows(lab, target, tenant), n)
        self.assertEqual(tenant_rows(lab, source, tenant), 0)
        # No registration on either node: the only new (name, id) rows are none.
        self.assertEqual(res["registrations"], [], "a device registered anew instead of moving")
        moved_ids = sorted(i for (name, i) in res["nodes_after"][target] if name.startswith(tenant + "-"))
        was_ids = sorted(i for (name, i) in res["nodes_before"][source] if name.startswith(tenant + "-"))
        self.assertEqual(moved_ids, was_ids, "node ids (tailscale Self.ID) changed")
        # Everyone else: a tenant on the source was never disconnected; a tenant on the target only by the
        # target's restart, and then headshift said so beforehand and in the report.
        report = res["report"] or {}
        said = target_restart_devices(report)
        for other, s in res["tenants"].items():
            if other == tenant:
                continue
            self.assertEqual(s["reauth"], [], f"{other} asked for a login")
            home = lab.info["tenants"][other]["home"]
            if s["disconnected"]:
                self.assertEqual(home, target, f"{other} (on {home}) was disconnected: {s}")
                self.assertIsNotNone(said, "other tenants reconnected but headshift reported no target restart")
                self.assertGreaterEqual(said, len(s["disconnected"]))
                self.assertEqual(s["unrecovered"], [], f"{other} devices not back after the restart")
        self.assertEqual(report.get("reauth"), 0)


class TraefikMigration(RealPeerLab):
    EDGE = "traefik"
    NAME = "rt"

    def test_1_bad_input_changes_nothing(self):
        lab = self.lab
        # Unknown tenant, same source and target: refused before anything (2 bad input / 3 preflight).
        p = hs(lab, "migrate", "nosuch", "--to", "4", "--yes")
        self.assertIn(p.returncode, (2, 3), p.stdout)
        self.assertIn("nosuch", p.stdout)
        p = hs(lab, "migrate", "hsa", "--to", "3", "--yes")
        self.assertIn(p.returncode, (2, 3), p.stdout)
        self.assertIn("already on cluster 3", p.stdout)
        self.assertEqual(tenant_rows(lab, "3", "hsa"), len(lab.devices("hsa")))
        self.assertEqual(tenant_rows(lab, "4", "hsa"), 0)

    def test_2_target_down_is_refused(self):
        lab = self.lab
        lab.stop_node("4")
        try:
            res = observed_move(lab, "hsa", "3", [HEADSHIFT, "--config", lab.info["config"], "--json", "migrate",
                                                  "hsa", "--to", "4", "--yes"], settle_s=0.5)
        finally:
            lab.start_node("4")
            lab.wait_running()
        self.assertEqual(res["exit_code"], 3, res["stdout"][-1500:])
        self.assertIn("4", json.dumps(res["report"].get("error", res["report"])))
        self.assertEqual(tenant_rows(lab, "4", "hsa"), 0)
        self.assertEqual(tenant_rows(lab, "3", "hsa"), len(lab.devices("hsa")))
        t = res["tenants"]["hsa"]
        self.assertEqual(t["disconnected"], [])
        self.assertEqual(res["identity"], {})

    def test_3_other_noise_key_on_target_is_refused(self):
        lab = self.lab
        cfgp = lab.headscale_config_path("4")
        with open(cfgp) as f:
            orig = f.read()
        lab.stop_node("4")
        with open(cfgp, "w") as f:
            f.write(orig.replace(lab.info["nodes"]["4"]["noise_key"], lab.path("secrets", "noise_other.key")))
        lab.start_node("4")
        try:
            res = observed_move(lab, "hsa", "3", [HEADSHIFT, "--config", lab.info["config"], "--json", "migrate",
                                                  "hsa", "--to", "4", "--yes"], settle_s=0.5)
        finally:
            lab.stop_node("4")
            with open(cfgp, "w") as f:
                f.write(orig)
            lab.start_node("4")
            lab.wait_running()
        self.assertEqual(res["exit_code"], 3, res["stdout"][-1500:])
        self.assertIn("noise", res["stdout"].lower())
        self.assertEqual(tenant_rows(lab, "4", "hsa"), 0)
        self.assert_untouched(res, "hsa")

    def test_4_clashing_ip_on_target_is_refused(self):
        lab = self.lab
        victim = lab.device_status("hsa-1")["ips"][0]
        other = lab.device_status("hsb-1")
        # A device already registered on node 4 holds hsa-1's tailnet address (headscale keeps IPs unique
        # only in memory: the restart makes node 4 serve it).
        lab.psql("hs4", f"UPDATE nodes SET ipv4 = '{victim}' WHERE given_name = 'hsb-1'")
        lab.restart_node("4")
        try:
            res = observed_move(lab, "hsa", "3", [HEADSHIFT, "--config", lab.info["config"], "--json", "migrate",
                                                  "hsa", "--to", "4", "--yes"], settle_s=0.5)
        finally:
            lab.psql("hs4", f"UPDATE nodes SET ipv4 = '{other['ips'][0]}' WHERE given_name = 'hsb-1'")
            lab.restart_node("4")
            lab.wait_running()
        self.assertEqual(res["exit_code"], 3, res["stdout"][-1500:])
        self.assertIn(victim, res["stdout"])
        self.assertEqual(tenant_rows(lab, "4", "hsa"), 0)
        self.assert_untouched(res, "hsa")

    def test_5_file_traefik_rejects_is_refused(self):
        lab = self.lab
        bad = lab.path("traefik", "dynamic", "zz-operator-broken.yml")
        # An operator's file real Traefik cannot load: Traefik then applies no file-provider change at all,
        # so the flip could never go live. headshift must refuse before anything (no copy, no restart).
        with open(bad, "w") as f:
            f.write("http:\n  routers:\n    broken:\n      rule: Host(`x.demo.com`)\n      service: [unclosed\n")
        pid4 = lab.load()["pids"]["headscale-4"]
        try:
            res = observed_move(lab, "hsa", "3", [HEADSHIFT, "--config", lab.info["config"], "--json", "migrate",
                                                  "hsa", "--to", "4", "--yes"], settle_s=1.0)
        finally:
            os.unlink(bad)
        self.assertEqual(lab.load()["pids"]["headscale-4"], pid4, "node 4 was restarted for a refused move")
        self.assertEqual(res["exit_code"], 3, res["stdout"][-2000:])
        self.assertIn("zz-operator-broken.yml", res["stdout"])
        self.assertEqual(tenant_rows(lab, "4", "hsa"), 0)
        self.assertEqual(tenant_rows(lab, "3", "hsa"), len(lab.devices("hsa")))
        self.assert_untouched(res, "hsa")
        route = js(hs(lab, "route", "show", "hsa"))
        self.assertIn("headscale-cluster3", json.dumps(route))

    def test_6_migrate_through_traefik(self):
        lab = self.lab
        res = observed_move(lab, "hsa", "4", [HEADSHIFT, "--config", lab.info["config"], "--json", "migrate",
                                              "hsa", "--to", "4", "--yes"])
        self.assert_moved(res, "hsa", "3", "4")
        # hsc stays on node 3 the whole time: never disconnected.
        self.assertEqual(res["tenants"]["hsc"]["disconnected"], [])
        # Traefik itself serves the new route: its API shows the router's new service, and a request with
        # the tenant's Host reaches node 4 (node 4's API key is accepted, node 3's is not).
        routers = json.loads(urllib.request.urlopen(f"http://{lab.edge_ip()}:8081/api/http/routers").read())
        svc = {r["name"]: r["service"] for r in routers}
        self.assertEqual(svc.get("hsa@file"), "headscale-cluster4")
        with open(lab.info["nodes"]["4"]["api_key_file"]) as f:
            key4 = f.read().strip()
        req = urllib.request.Request(f"http://{lab.edge_ip()}/api/v1/node?user=hsa",
                                     headers={"Host": "hsa.demo.com", "Authorization": f"Bearer {key4}"})
        body = json.loads(urllib.request.urlopen(req, timeout=5).read())
        self.assertEqual(len(body["nodes"]), DEVICES)  # its users' nodes (the tagged server has no user)

    def test_7_traefik_keeps_upgraded_connection_until_reset(self):
        """The reason headshift exists: after the route flip, real Traefik keeps every upgraded /ts2021
        connection on the old node. Stop headshift right after route_live and look."""
        lab = self.lab
        mine = lab.devices("hsc")
        watch = observe.DeviceLogWatch(lab, mine).start()
        p = hs(lab, "migrate", "hsc", "--to", "4", "--yes", env={"HEADSHIFT_CRASH_AFTER": "route_live"})
        self.assertNotEqual(p.returncode, 0)
        routers = json.loads(urllib.request.urlopen(f"http://{lab.edge_ip()}:8081/api/http/routers").read())
        self.assertEqual({r["name"]: r["service"] for r in routers}.get("hsc@file"), "headscale-cluster4")
        time.sleep(3)
        watch.stop()
        # No hsc device lost its control connection, node 3 still has them all online, and Traefik's
        # upstream connections to node 3 are still established.
        self.assertEqual(sum(len(watch.losses(d)) for d in mine), 0)
        on3 = observe.online_on_node(lab, "3", "hsc")
        self.assertTrue(on3 and all(on3.values()), on3)
        ss = subprocess.run(["ip", "netns", "exec", lab.ns("dc"), "ss", "-Htn", "state", "established",
                             f"dst {lab.node_ip(0)}:8080"], capture_output=True, text=True).stdout
        self.assertGreaterEqual(len(ss.strip().splitlines()), len(mine))
        st = js(hs(lab, "status", "hsc"))
        mid = (st.get("migrations") or [st])[0].get("id") if isinstance(st, dict) else None
        self.assertTrue(mid, st)
        res = observed_move(lab, "hsc", "4", [HEADSHIFT, "--config", lab.info["config"], "--json", "resume", mid])
        self.assert_moved(res, "hsc", "3", "4")


class HAProxyMigration(RealPeerLab):
    EDGE = "haproxy"
    NAME = "rh"
    TENANTS = 2

    def test_migrate_through_haproxy(self):
        lab = self.lab
        res = observed_move(lab, "hsa", "4", [HEADSHIFT, "--config", lab.info["config"], "--json", "migrate",
                                              "hsa", "--to", "4", "--yes"])
        self.assert_moved(res, "hsa", "3", "4")
        p = subprocess.run(["socat", "-", f"UNIX-CONNECT:{lab.info['haproxy']['socket']}"],
                           input=f"show map {lab.info['haproxy']['map']}\n", capture_output=True, text=True)
        self.assertIn("hsa.demo.com headscale-cluster4", p.stdout)


if __name__ == "__main__":
    unittest.main(verbosity=2)
