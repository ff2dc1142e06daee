#!/usr/bin/python3
"""The lab toolkit (sandbox/labkit) on real namespaces, veths and processes: a second `up` of a prefix sweeps
what a killed lab left; a live lab is never swept; teardown of a lab with a resource removed behind its back
reports exactly that resource (exit 1 from the command line) and still removes the rest; a CPU limit (cgroup)
holds a busy process from its start and across a restart, and goes with the lab.
Each test uses its own prefix (from the pid), so runs of other agents never meet it. Needs root."""
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
SANDBOX = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(HERE))), "sandbox")
sys.path.insert(0, SANDBOX)
import labkit  # noqa: E402
from labkit import network  # noqa: E402

PY = "/usr/bin/python3"


def exists_ns(name):
    return os.path.exists(f"/run/netns/{name}")


def run_cli(prefix, cmd):
    return subprocess.run([PY, os.path.join(SANDBOX, "labkit"), "--prefix", prefix, cmd], capture_output=True,
                          text=True, timeout=120)


@unittest.skipUnless(os.geteuid() == 0, "needs root (network namespaces)")
class LabkitTest(unittest.TestCase):
    def setUp(self):
        self.prefix = f"lk{os.getpid():x}{self.id()[-1]}"  # e.g. lk1f3ad / lk1f3ae: one per test method

    def tearDown(self):
        run_cli(self.prefix, "down")  # whatever a failed assertion left

    def tiny_lab(self, driver_exits=True):
        """In a separate driver process (it exits, as a CLI `up` does): namespaces <p>-a and <p>-b, a veth
        between them, a root veth into a, /etc/netns/<p>-a/hosts, `sleep` in a. Returns the ledger."""
        script = textwrap.dedent(f"""
            import sys, json
            sys.path.insert(0, {SANDBOX!r})
            import labkit
            lab = labkit.Lab({self.prefix!r})
            lab.begin()
            a, b = lab.add_netns("a"), lab.add_netns("b")
            lab.add_veth("x0", "y0", a, b)
            lab.add_veth(lab.link("r"), "d0", None, a)
            labkit.addr_up(lab.link("r"), "192.0.2.1/30")
            lab.write_etc(a, {{"hosts": "127.0.0.1 localhost\\n"}})
            with open(lab.path("marker"), "w") as f:
                f.write("first lab")
            p = lab.spawn("sleeper", ["sleep", "600"], netns=a)
            print(json.dumps({{"pid": p.pid, "ledger": lab.ledger.read()}}))
        """)
        p = subprocess.run([PY, "-c", script], capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        return json.loads(p.stdout)

    def test_second_up_sweeps_a_killed_lab(self):
        first = self.tiny_lab()
        pfx = self.prefix
        self.assertEqual(sorted(first["ledger"]["namespaces"]), [f"{pfx}-a", f"{pfx}-b"])
        self.assertEqual(first["ledger"]["links"], [f"{pfx}r"])
        self.assertIn(f"{pfx}r", network.root_links_of(pfx))
        # A live lab is never swept: a second up is refused, and sweep leaves it alone.
        with self.assertRaisesRegex(labkit.LabError, "is up"):
            labkit.Lab(pfx).begin()
        self.assertEqual(labkit.Lab(pfx).sweep(), [])
        self.assertTrue(exists_ns(f"{pfx}-a"))
        # Kill the lab: its state now says a process that no longer runs. Add a namespace with the prefix
        # that no ledger records (a lab whose state is gone).
        os.kill(first["pid"], signal.SIGKILL)
        labkit.wait_for("the killed process reaped", lambda: not labkit.pid_alive(first["pid"]), 10)
        subprocess.run(["ip", "netns", "add", f"{pfx}-orphan"], check=True)
        lab = labkit.Lab(pfx)
        self.assertFalse(lab.is_live())
        lab.begin()
        for ns in ("a", "b", "orphan"):
            self.assertFalse(exists_ns(f"{pfx}-{ns}"), f"{pfx}-{ns} survived the sweep")
        self.assertFalse(network.link_exists(f"{pfx}r"))
        self.assertFalse(os.path.exists(f"/etc/netns/{pfx}-a"))
        self.assertFalse(os.path.exists(lab.path("marker")), "the dead lab's state dir was kept")
        self.assertEqual(lab.ledger.read()["namespaces"], [])
        self.assertEqual(lab.ledger.processes(), {})
        # The new lab works on the same names.
        lab.add_netns("a")
        self.assertTrue(exists_ns(f"{pfx}-a"))
        self.assertEqual(lab.teardown(), [])
        self.assertFalse(exists_ns(f"{pfx}-a"))
        self.assertFalse(os.path.exists(lab.dir))
        self.assertFalse(os.path.exists(lab.ledger.dir))

    def test_teardown_reports_a_resource_removed_behind_its_back(self):
        first = self.tiny_lab()
        pfx = self.prefix
        subprocess.run(["ip", "netns", "del", f"{pfx}-b"], check=True)  # behind the lab's back
        p = run_cli(pfx, "down")
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn(f"namespace {pfx}-b was already gone", p.stderr)
        problems = [line for line in p.stderr.splitlines() if "teardown:" in line]
        self.assertEqual(len(problems), 1, p.stderr)
        # ... and the rest is removed all the same.
        self.assertFalse(labkit.pid_alive(first["pid"]), "the lab's process still runs")
        self.assertFalse(exists_ns(f"{pfx}-a"))
        self.assertFalse(network.link_exists(f"{pfx}r"))
        self.assertFalse(os.path.exists(f"/etc/netns/{pfx}-a"))
        self.assertFalse(os.path.exists(f"/tmp/headshift-lab-{pfx}"))
        self.assertFalse(os.path.exists(labkit.Lab(pfx).ledger.dir))
        # Nothing left: a second down is clean.
        p = run_cli(pfx, "down")
        self.assertEqual(p.returncode, 0, p.stderr)

    def test_cpu_limit_follows_restarts_and_teardown_removes_its_cgroup(self):
        from labkit import cgroups
        pfx = self.prefix
        lab = labkit.Lab(pfx)
        lab.begin()
        path = lab.add_cpu_limit("busy", 0.2)
        self.assertEqual(lab.ledger.read()["cgroups"], [path])
        self.assertAlmostEqual(cgroups.limit_of(path), 0.2)
        clk = os.sysconf("SC_CLK_TCK")

        def cpu_s(pid):
            with open(f"/proc/{pid}/stat") as f:
                st = f.read().rsplit(")", 1)[1].split()
            return (int(st[11]) + int(st[12])) / clk

        for start in (1, 2):  # the second start is a restart into the same cgroup
            p = lab.spawn("busy", [PY, "-c", "while True: pass"], cgroup=path)
            labkit.wait_for("the busy process in its cgroup", lambda: cgroups.contains(path, p.pid), 10)
            with open(f"/proc/{p.pid}/cmdline", "rb") as f:
                self.assertIn(b"while True", f.read(), "the pid is not the program's")
            c0, t0 = cpu_s(p.pid), time.monotonic()
            time.sleep(2.0)
            used, wall = cpu_s(p.pid) - c0, time.monotonic() - t0
            # The kernel's quota is an upper bound (a loaded machine gives it less, never more): 0.2 CPU.
            self.assertLess(used, 0.2 * wall + 0.25, f"start {start}: {used:.2f} CPU s in {wall:.2f} s")
            lab.stop("busy")
            p.wait()
        # A lab killed with its cgroup made: the next begin sweeps it.
        p = lab.spawn("busy", [PY, "-c", "while True: pass"], cgroup=path)
        os.kill(p.pid, signal.SIGKILL)
        p.wait()
        again = labkit.Lab(pfx)
        again.begin()
        self.assertFalse(os.path.exists(path), "the dead lab's cgroup survived the sweep")
        path = again.add_cpu_limit("busy", 0.5)
        self.assertEqual(again.teardown(), [])
        self.assertFalse(os.path.exists(path), "teardown left the cgroup")
        self.assertEqual(cgroups.lab_cgroups(pfx), [])


if __name__ == "__main__":
    unittest.main()
