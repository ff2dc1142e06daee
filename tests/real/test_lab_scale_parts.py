#!/usr/bin/python3
"""`unit`: the parts of the scale lab that need no peers and no root: grouping the swarm's disconnect times into
waves (swarm_records.waves, which the pacing test and bench/real_peers/scale.py read the devices' records
with) and finding the cgroup cpu controller (labkit/cgroups.py) in a mount table, v1 or v2."""
import os
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(HERE)), "sandbox"))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(HERE)), "sandbox", "real"))

from labkit import LabError, cgroups  # noqa: E402
from swarm_records import SwarmWatch, first_losses, reset_times, waves  # noqa: E402


class Waves(unittest.TestCase):
    def test_gaps_split_waves(self):
        t = [10.000, 10.004, 10.010, 10.9, 10.95, 11.0, 12.5]
        self.assertEqual([len(w) for w in waves(t)], [3, 3, 1])
        self.assertEqual([len(w) for w in waves(reversed(t))], [3, 3, 1])  # order of the input does not matter
        self.assertEqual([len(w) for w in waves(t, gap_s=1.0)], [6, 1])
        self.assertEqual(waves([]), [])

    def test_a_long_wave_of_close_resets_stays_one(self):
        # 500 resets at 2,000/s: 0.5 ms apart, 250 ms in all: one wave.
        self.assertEqual([len(w) for w in waves([i * 0.0005 for i in range(500)])], [500])

    def test_first_losses_after_the_start(self):
        class Watch:
            devices = ["a", "b", "c"]

            def losses(self, d):
                return {"a": [(5.0, "lost", ""), (20.0, "lost", ""), (21.0, "lost", "")],
                        "b": [(22.0, "lost", "")], "c": [(1.0, "lost", "")]}[d]
        self.assertEqual(first_losses(Watch(), since=10.0), {"a": 20.0, "b": 22.0})


    def test_reset_time_is_the_loss_a_tcp_reset_ended(self):
        class Swarm:
            def devices(self):
                return ["a", "b", "c"]
        w = SwarmWatch(Swarm())
        w.events = {
            # the route switch closed a's session (EOF), its new one was reset by the wave at 12.0
            "a": [(11.0, "lost", ""), (11.01, "error", "PollNetMap: EOF"), (11.5, "netmap", ""),
                  (12.0, "lost", ""), (12.05, "error", "read tcp ...: read: connection reset by peer"),
                  (12.6, "netmap", "")],
            "b": [(12.001, "lost", ""), (12.02, "error", "read: connection reset by peer"), (12.7, "netmap", "")],
            "c": [(13.0, "lost", ""), (13.1, "error", "PollNetMap: EOF")],  # no reset: its last loss
        }
        self.assertEqual(reset_times(w, since=10.0), {"a": 12.0, "b": 12.001, "c": 13.0})
        self.assertEqual(reset_times(w, since=12.5), {"c": 13.0})


class CpuController(unittest.TestCase):
    def mounts(self, text):
        f = tempfile.NamedTemporaryFile("w", delete=False)
        f.write(text)
        f.close()
        self.addCleanup(os.unlink, f.name)
        return f.name

    def test_v1_cpu_hierarchy(self):
        m = self.mounts("cgroup /sys/fs/cgroup/cpuacct cgroup rw,relatime,cpuacct 0 0\n"
                        "cgroup /sys/fs/cgroup/cpu cgroup rw,relatime,cpu 0 0\n"
                        "cgroup2 /sys/fs/cgroup/unified cgroup2 rw,relatime 0 0\n")
        self.assertEqual(cgroups.cpu_hierarchy(m), (1, "/sys/fs/cgroup/cpu"))

    def test_v2_offering_cpu(self):
        d = tempfile.mkdtemp()
        self.addCleanup(lambda: (os.unlink(os.path.join(d, "cgroup.controllers")), os.rmdir(d)))
        with open(os.path.join(d, "cgroup.controllers"), "w") as f:
            f.write("cpuset cpu io memory pids\n")
        self.assertEqual(cgroups.cpu_hierarchy(self.mounts(f"cgroup2 {d} cgroup2 rw,nosuid 0 0\n")), (2, d))

    def test_no_cpu_controller_is_a_clear_error(self):
        d = tempfile.mkdtemp()
        self.addCleanup(lambda: (os.unlink(os.path.join(d, "cgroup.controllers")), os.rmdir(d)))
        with open(os.path.join(d, "cgroup.controllers"), "w") as f:
            f.write("hugetlb\n")
        with self.assertRaisesRegex(LabError, "no cgroup cpu controller"):
            cgroups.cpu_hierarchy(self.mounts(f"cgroup2 {d} cgroup2 rw 0 0\n"
                                              "cgroup /sys/fs/cgroup/cpuacct cgroup rw,cpuacct 0 0\n"))

    def test_wrap_keeps_the_program_as_the_process(self):
        argv = cgroups.wrap("/sys/fs/cgroup/cpu/x", ["ip", "netns", "exec", "ns", "headscale", "serve"])
        self.assertEqual(argv[:2], ["/bin/sh", "-c"])
        self.assertIn("exec", argv[2])
        self.assertEqual(argv[3:], ["/sys/fs/cgroup/cpu/x", "ip", "netns", "exec", "ns", "headscale", "serve"])


if __name__ == "__main__":
    unittest.main()
