"""Fleet tier: one migration across three proxy hosts, driven by real Ansible over real SSH.

Each proxy host is a network namespace with its own sshd (keys made here) and its own real HAProxy; the
devices (sandbox stand-in clients, sandbox/fleet.h) spread their control streams over the three hosts.
What is asserted comes from the hosts and the devices themselves: every host's HAProxy `show map`, every
host's kernel sessions (socket cookies, before and after), and each device's own record of its
disconnects and of the cluster that serves it. headshift's journal is checked last, as the operator sees it.
"""
import json
import os
import re
import subprocess
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import fleetlab  # noqa: E402

REPO = os.path.dirname(os.path.dirname(HERE))
ANSIBLE_DIR = os.path.join(REPO, "playbooks", "ansible")


def other(cluster, clusters):
    return next(c for c in clusters if c != cluster)


class FleetAnsible(unittest.TestCase):
    lab = None

    @classmethod
    def setUpClass(cls):
        cls.lab = fleetlab.FleetLab("ft")
        cls.lab.up(hosts=3, tenants=3, devices=12)
        with open(cls.lab.path("fleet", "clients.json")) as f:
            spec = json.load(f)["clients"]
        vip_to_host = {h["vip"]: n for n, h in cls.lab.info["hosts"].items()}
        cls.host_of = {c["name"]: vip_to_host[c["connect"].rsplit(":", 1)[0]] for c in spec}
        cls.addr_of = {c["name"]: c["source_ip"] for c in spec}

    @classmethod
    def tearDownClass(cls):
        if cls.lab and os.environ.get("FLEET_KEEP_LAB") != "1":
            cls.lab.down()

    # ---- helpers ----
    def playbook(self, name, *extra, check=False, background=False, timeout=600):
        argv = ["ansible-playbook", "-i", self.lab.info["inventory"], os.path.join(ANSIBLE_DIR, name)] + list(extra)
        if check:
            argv.append("--check")
        env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ANSIBLE_DIR, "ansible.cfg"), ANSIBLE_NOCOLOR="1",
                   ANSIBLE_LOCAL_TEMP=self.lab.path("ansible-tmp"), ANSIBLE_SSH_CONTROL_PATH_DIR=self.lab.path("cp"))
        if background:
            return subprocess.Popen(argv, env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        p = subprocess.run(argv, env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=timeout)
        return p

    def where(self, tenant):
        """The cluster every host routes tenant to (asserting they agree)."""
        backends = {n: self.lab.host_map(n).get(f"{tenant}.demo.com") for n in self.lab.info["hosts"]}
        self.assertEqual(len(set(backends.values())), 1, f"hosts disagree on {tenant}'s route: {backends}")
        return next(iter(backends.values())).replace("headscale-cluster", "")

    def journal(self, tenant):
        p = self.lab.hs("status", tenant, "--json", check=True)
        return json.loads(p.stdout)["migrations"]

    def devices(self, tenant=None):
        return {c["name"]: c for c in self.lab.clients() if tenant is None or c["tenant"] == tenant}

    def sessions_by_host(self):
        return {n: self.lab.host_sessions(n) for n in self.lab.info["hosts"]}

    def tenant_cookies(self, sessions, tenant):
        """{host: set of cookies of tenant's sessions on that host}."""
        addrs = {self.addr_of[n] for n, c in self.devices(tenant).items()}
        return {h: {ck for peer, ck in s.items() if peer.rsplit(":", 1)[0].strip("[]") in addrs}
                for h, s in sessions.items()}

    def assert_ok(self, p, what):
        self.assertEqual(p.returncode, 0, f"{what} failed:\n{p.stdout[-6000:]}")

    def wait_journal(self, tenant, pred, timeout=60):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ms = self.journal(tenant)
            if pred(ms):
                return ms
            time.sleep(0.05)
        self.fail(f"journal of {tenant}: condition not reached in {timeout} s: {ms}")

    def migrate_interrupted(self, tenant, to, fail_host):
        """Runs migrate_tenant.yml and calls fail_host() once the control host has started the copy (every
        host passed preflight); returns the playbook's output, asserting that it failed."""
        n_before = len(self.journal(tenant))
        run = self.playbook("migrate_tenant.yml", "-e", f"tenant={tenant}", "-e", f"to={to}", background=True)
        try:
            self.wait_journal(tenant, lambda ms: len(ms) > n_before)
            fail_host()
            out, _ = run.communicate(timeout=600)
        finally:
            if run.poll() is None:
                run.kill()
        self.assertNotEqual(run.returncode, 0, out[-4000:])
        return out

    # ---- tests, in order (they share the lab) ----
    def test_0_bad_input_changes_nothing(self):
        maps = {n: self.lab.host_map(n) for n in self.lab.info["hosts"]}
        p = self.playbook("migrate_tenant.yml", "-e", "to=4")
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("-e tenant=NAME -e to=CLUSTER", p.stdout)
        p = self.playbook("migrate_tenant.yml", "-e", "tenant=nosuch", "-e", "to=4")
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("nosuch", p.stdout)
        home = self.where("hsa")
        p = self.playbook("migrate_tenant.yml", "-e", "tenant=hsa", "-e", f"to={home}")
        self.assertNotEqual(p.returncode, 0, p.stdout[-3000:])
        # headshift itself: fleet operations that would pause every tenant half way are refused (exit 2)
        q = self.lab.hs("drain", home)
        self.assertEqual(q.returncode, 2, q.stderr)
        self.assertIn("proxy.kind fleet", q.stderr)
        q = self.lab.hs("route", "set", "hsa", home)
        self.assertEqual(q.returncode, 2, q.stderr)
        self.assertEqual(self.journal("hsa"), [])
        self.assertEqual(maps, {n: self.lab.host_map(n) for n in self.lab.info["hosts"]})
        self.assertTrue(all(c["disconnects"] == 0 for c in self.devices().values()))

    def test_1_check_mode_changes_nothing(self):
        home = self.where("hsa")
        to = other(home, self.lab.info["clusters"])
        before = self.sessions_by_host()
        p = self.playbook("migrate_tenant.yml", "-e", "tenant=hsa", "-e", f"to={to}", check=True)
        self.assert_ok(p, "migrate_tenant.yml --check")
        self.assertIn("plan only (check mode)", p.stdout)
        self.assertRegex(p.stdout, r"would reset\s+[1-9]\d* session")
        # the maintainers' playbooks in check mode: plans only, no cordon, no upgrade command run
        p = self.playbook("drain_cluster.yml", "-e", f"cluster={home}", check=True)
        self.assert_ok(p, "drain_cluster.yml --check")
        p = self.playbook("rolling_upgrade.yml", "-e", "clusters=" + ",".join(self.lab.info["clusters"]),
                          "-e", json.dumps({"upgrade_command": ["/bin/false", "{cluster}"]}), check=True)
        self.assert_ok(p, "rolling_upgrade.yml --check")
        q = self.lab.hs("plan", "hsb", "--to", home)  # a cordoned target would be refused (exit 3)
        self.assertEqual(q.returncode, 0, q.stdout + q.stderr)
        self.assertEqual(self.where("hsa"), home)
        self.assertEqual(self.journal("hsa"), [])
        self.assertEqual(before, self.sessions_by_host())
        self.assertTrue(all(c["disconnects"] == 0 for c in self.devices().values()))

    def test_2_migrate_across_every_host(self):
        tenant = "hsa"
        home = self.where(tenant)
        to = other(home, self.lab.info["clusters"])
        before = self.sessions_by_host()
        mine_before = self.tenant_cookies(before, tenant)
        for h, cookies in mine_before.items():
            self.assertTrue(cookies, f"{tenant} has no session on {h}: the test would prove nothing there")
        others_before = {t: self.tenant_cookies(before, t) for t in ("hsb", "hsc")}
        p = self.playbook("migrate_tenant.yml", "-e", f"tenant={tenant}", "-e", f"to={to}")
        self.assert_ok(p, "migrate_tenant.yml")
        # every host reset its share in waves gated by the target's view of the tenant (adaptive pacing)
        paced = re.findall(r"paced adaptive in [1-9]\d* wave", p.stdout)
        self.assertEqual(len(paced), len(self.lab.info["hosts"]), p.stdout[-3000:])
        # every host routes the tenant to the target (each HAProxy's own map)
        self.assertEqual(self.where(tenant), to)
        # the devices: every one of the tenant's back, served by the target, reset exactly once
        devs = self.lab.wait_connected(tenant, to, timeout=30)
        self.assertEqual({d["disconnects"] for d in devs}, {1}, devs)
        self.assertEqual(sum(d["rejections"] for d in devs), 0)
        # each host's kernel: the tenant's old sessions gone, new ones there; other tenants' untouched.
        # The devices' records lag their sockets by up to a second: wait until each host's kernel shows
        # as many sessions of the tenant as before (bounded), then assert.
        deadline = time.monotonic() + 15
        while True:
            after = self.sessions_by_host()
            mine_after = self.tenant_cookies(after, tenant)
            if all(len(mine_after[h]) == len(mine_before[h]) for h in after) or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        for h in self.lab.info["hosts"]:
            self.assertFalse(mine_before[h] & mine_after[h], f"{tenant}'s old sessions still open on {h}")
            self.assertEqual(len(mine_after[h]), len(mine_before[h]), f"{tenant}'s devices on {h} not back")
            for t, per_host in others_before.items():
                self.assertTrue(per_host[h], f"{t} has no session on {h}")
                self.assertEqual(per_host[h], self.tenant_cookies(after, t)[h], f"{t}'s sessions on {h} touched")
        for t in ("hsb", "hsc"):
            self.assertEqual({d["disconnects"] for d in self.devices(t).values()}, {0}, t)
        # the journal: one migration, complete, the cut recorded as done on the proxy hosts
        ms = self.journal(tenant)
        self.assertEqual(len(ms), 1, ms)
        self.assertEqual(ms[0]["state"], "complete")
        ext = [s["step"] for s in ms[0]["steps"] if s.get("details", {}).get("external")]
        self.assertEqual(ext, ["snapshot_sessions", "switch_route", "route_live", "reset_sessions"])
        # a re-run converges: nothing is changed, nothing more is reset
        p = self.playbook("migrate_tenant.yml", "-e", f"tenant={tenant}", "-e", f"to={to}")
        self.assert_ok(p, "second run of migrate_tenant.yml")
        self.assertIn("already there", p.stdout)
        self.assertRegex(p.stdout, r"p1\s*: ok=\d+\s+changed=0")
        self.assertEqual(len(self.journal(tenant)), 1)
        self.assertEqual({d["disconnects"] for d in self.devices(tenant).values()}, {1})

    def test_3_host_lost_mid_run_then_resume(self):
        tenant = "hsb"
        home = self.where(tenant)
        to = other(home, self.lab.info["clusters"])
        out = self.migrate_interrupted(tenant, to, lambda: self.lab.stop_sshd("p2"))
        self.assertRegex(out, r"p2.*UNREACHABLE|UNREACHABLE.*p2|fatal: \[p2\]")
        ms = self.journal(tenant)
        self.assertEqual(len(ms), 1)
        self.assertEqual(ms[0]["state"], "paused", ms[0])
        # p2's devices still have their control streams: nothing on p2 was cut
        p2_devs = [d for n, d in self.devices(tenant).items() if self.host_of[n] == "p2"]
        self.assertTrue(p2_devs)
        self.assertTrue(all(d["disconnects"] == 0 and d["cluster"] == home for d in p2_devs), p2_devs)
        # p2 is back: the same playbook continues the same migration
        self.lab.start_sshd("p2")
        p = self.playbook("migrate_tenant.yml", "-e", f"tenant={tenant}", "-e", f"to={to}")
        self.assert_ok(p, "migrate_tenant.yml after p2 came back")
        self.assertEqual(self.where(tenant), to)
        devs = self.lab.wait_connected(tenant, to, timeout=30)
        self.assertEqual({d["disconnects"] for d in devs}, {1}, devs)
        ms = self.journal(tenant)
        self.assertEqual([(m["id"], m["state"]) for m in ms], [(ms[0]["id"], "complete")])
        self.assertEqual({d["disconnects"] for d in self.devices("hsc").values()}, {0})

    def test_4_rollback_restores_every_host(self):
        tenant = "hsc"
        home = self.where(tenant)
        to = other(home, self.lab.info["clusters"])
        # the cut on every host, then stop before finishing (the operator looks first)
        p = self.playbook("migrate_tenant.yml", "-e", f"tenant={tenant}", "-e", f"to={to}",
                          "-e", "headshift_finish=false")
        self.assert_ok(p, "migrate_tenant.yml -e headshift_finish=false")
        self.assertEqual(self.where(tenant), to)
        self.lab.wait_connected(tenant, to, timeout=30)
        self.assertEqual(self.journal(tenant)[0]["state"], "paused")
        mid = self.journal(tenant)[0]["id"]
        # headshift guards the journal: only the cut can be recorded as done elsewhere, and a paused
        # migration is continued or undone, never overtaken by a new one
        q = self.lab.hs("resume", mid, "--from", "complete")
        self.assertEqual(q.returncode, 2, q.stdout + q.stderr)
        self.assertIn("would skip reconnected", q.stdout + q.stderr)
        q = self.lab.hs("migrate", tenant, "--to", to, "--yes")
        self.assertEqual(q.returncode, 3, q.stdout + q.stderr)
        self.assertIn(f"unfinished migration {mid}", q.stdout + q.stderr)
        self.assertEqual([m["state"] for m in self.journal(tenant)], ["paused"])
        p = self.playbook("rollback_tenant.yml", "-e", f"tenant={tenant}")
        self.assert_ok(p, "rollback_tenant.yml")
        self.assertEqual(self.where(tenant), home)
        devs = self.lab.wait_connected(tenant, home, timeout=30)
        self.assertEqual({d["disconnects"] for d in devs}, {2}, devs)  # there and back
        self.assertEqual(sum(d["rejections"] for d in devs), 0)
        ms = self.journal(tenant)
        self.assertEqual(ms[0]["state"], "rolled_back", ms[0])
        # a re-run of the rollback converges: nothing changes, nobody is reset again
        p = self.playbook("rollback_tenant.yml", "-e", f"tenant={tenant}")
        self.assert_ok(p, "second run of rollback_tenant.yml")
        self.assertRegex(p.stdout, r"p1\s*: ok=\d+\s+changed=0")
        self.assertEqual({d["disconnects"] for d in self.devices(tenant).values()}, {2})
        # a complete migration is not rolled back: the tenant is moved back instead
        p = self.playbook("rollback_tenant.yml", "-e", "tenant=hsa")
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("is complete: move the tenant back", p.stdout)

    def test_5_rolling_upgrade_drains_each_node(self):
        clusters = self.lab.info["clusters"]
        record = self.lab.path("upgrades.jsonl")
        cmd = json.dumps({"upgrade_command": [sys.executable, os.path.join(HERE, "upgrade_probe.py"),
                                              self.lab.path("fleet", "shard-0.clients.json"), record, "{cluster}"]})
        p = self.playbook("rolling_upgrade.yml", "-e", "clusters=" + ",".join(clusters), "-e", cmd, timeout=900)
        self.assert_ok(p, "rolling_upgrade.yml")
        with open(record) as f:
            seen = [json.loads(line) for line in f]
        self.assertEqual([s["cluster"] for s in seen], clusters)
        for s in seen:  # when its upgrade ran, no device was served by that node
            self.assertEqual(s["devices_on_cluster"], 0, s)
            self.assertGreater(s["devices_connected"], 0, s)
        self.lab.wait_connected(timeout=30)
        self.assertTrue(all(d["rejections"] == 0 for d in self.devices().values()))
        q = self.lab.hs("doctor", "--json")
        self.assertEqual(q.returncode, 0, q.stdout)

    def test_6_proxy_lost_mid_run_then_resume(self):
        """HAProxy of p3 dies after preflight: the run stops at p3's switch. Once HAProxy is back, p3's
        devices redial through p3's unswitched route to the source, which no longer holds their rows in the
        shared layout (the stand-in refuses them: the cost of leaving a cut half done). The re-run snapshots
        p3 afresh (its route still points at the source), switches it, and every device ends on the target."""
        tenant = "hsa"
        home = self.where(tenant)
        to = other(home, self.lab.info["clusters"])
        n_before = len(self.journal(tenant))
        out = self.migrate_interrupted(tenant, to, lambda: self.lab.stop_haproxy("p3"))
        self.assertRegex(out, r"fatal: \[p3\]")
        self.assertIn("haproxy.sock", out)
        self.assertEqual(self.journal(tenant)[0]["state"], "paused")
        self.lab.start_haproxy("p3")
        self.assertEqual(self.lab.host_map("p3")[f"{tenant}.demo.com"], f"headscale-cluster{home}")
        p = self.playbook("migrate_tenant.yml", "-e", f"tenant={tenant}", "-e", f"to={to}")
        self.assert_ok(p, "migrate_tenant.yml after p3's HAProxy came back")
        self.assertEqual(self.where(tenant), to)
        self.lab.wait_connected(tenant, to, timeout=60)
        self.lab.wait_connected(timeout=60)  # every other tenant's devices on p3 are back too
        ms = self.journal(tenant)
        self.assertEqual(len(ms), n_before + 1)
        self.assertEqual(ms[0]["state"], "complete", ms[0])

    def test_7_proxy_down_stops_before_any_change(self):
        tenant = "hsa"
        home = self.where(tenant)
        to = other(home, self.lab.info["clusters"])
        n_before = len(self.journal(tenant))
        self.lab.stop_haproxy("p3")
        p = self.playbook("migrate_tenant.yml", "-e", f"tenant={tenant}", "-e", f"to={to}")
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("p3", p.stdout)
        self.assertIn("haproxy.sock", p.stdout)  # headshift's error names the socket it could not reach
        self.assertEqual(len(self.journal(tenant)), n_before)  # no migration started
        for h in ("p1", "p2"):
            self.assertEqual(self.lab.host_map(h)[f"{tenant}.demo.com"], f"headscale-cluster{home}")

    def test_8_until_pauses_and_rollback_before_the_cut_touches_no_host(self):
        tenant = "hsc"
        home = self.lab.host_map("p1")[f"{tenant}.demo.com"].replace("headscale-cluster", "")
        to = other(home, self.lab.info["clusters"])
        maps = {h: self.lab.host_map(h) for h in ("p1", "p2")}
        q = self.lab.hs("--json", "migrate", tenant, "--to", to, "--yes", "--until", "verify")
        self.assertEqual(q.returncode, 0, q.stdout + q.stderr)
        rep = json.loads(q.stdout)
        self.assertEqual((rep["state"], rep["paused_after"], rep["next_step"]), ("paused", "verify", "policy"))
        mid = rep["id"]
        q = self.lab.hs("--json", "resume", mid)  # fleet: continues and pauses again before the cut
        rep = json.loads(q.stdout)
        self.assertEqual((q.returncode, rep["state"], rep["next_step"]), (0, "paused", "snapshot_sessions"), q.stdout)
        self.assertTrue(rep["client_addresses"])
        q = self.lab.hs("--json", "rollback", mid)
        self.assertEqual(q.returncode, 0, q.stdout + q.stderr)
        self.assertEqual(self.journal(tenant)[0]["state"], "rolled_back")
        self.assertEqual(maps, {h: self.lab.host_map(h) for h in ("p1", "p2")})
        # bad input on a proxy host is refused before anything is written: no snapshot file, route unchanged
        h = self.lab.info["hosts"]["p1"]
        snap = os.path.join(h["state_dir"], "bad.sessions.json")
        q = self.lab.hs("route", "set", tenant, to, "--snapshot-out", snap, "--client", "not-an-address", "--port", "80",
                        config=h["headshift_config"], netns=h["netns"])
        self.assertEqual(q.returncode, 2, q.stdout + q.stderr)
        self.assertFalse(os.path.exists(snap))
        self.assertEqual(self.lab.host_map("p1"), maps["p1"])
        # `apply` on the control host would pause each move half way: refused before its run is recorded
        book = self.lab.path("book.yaml")
        with open(book, "w") as f:
            f.write(f"name: fleet-apply\nsteps:\n  - migrate: {{tenants: [{tenant}], to: '{to}'}}\n")
        q = self.lab.hs("apply", book)
        self.assertEqual(q.returncode, 2, q.stdout + q.stderr)
        self.assertIn("proxy.kind fleet", q.stdout + q.stderr)
        self.assertEqual(self.journal(tenant)[0]["state"], "rolled_back")


if __name__ == "__main__":
    unittest.main()
