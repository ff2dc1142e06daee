"""What the lab's headscale nodes spent during a measured move (bench/real_peers): CPU seconds and peak RSS of
each node's process, sampled from /proc (a restart replaces the process: both are counted), and how many
times each node started (the start times the lab records for every headscale start, lab_nodes.py)."""
import os
import threading

CLK = os.sysconf("SC_CLK_TCK")


class Sampler:
    """CPU seconds and peak RSS of each headscale node over a move (pids looked up each time: a restart
    replaces the process)."""

    def __init__(self, lab):
        self.lab, self.clusters = lab, list(lab.info["clusters"])
        self.cpu = {c: {} for c in self.clusters}  # pid -> last utime+stime ticks
        self.base = {}
        self.rss = {c: 0 for c in self.clusters}
        self._stop = threading.Event()

    def _sample(self, first=False):
        for c in self.clusters:
            pid = self.lab.pid(f"headscale-{c}")
            if not pid:
                continue
            try:
                with open(f"/proc/{pid}/stat") as f:
                    st = f.read().rsplit(")", 1)[1].split()
                with open(f"/proc/{pid}/status") as f:
                    rss = next((int(x.split()[1]) for x in f if x.startswith("VmRSS:")), 0)
            except (OSError, StopIteration):
                continue
            ticks = int(st[11]) + int(st[12])  # utime + stime
            if first:
                self.base[(c, pid)] = ticks  # a process started during the move counts from 0
            self.cpu[c][pid] = ticks
            self.rss[c] = max(self.rss[c], rss)

    def start(self):
        self._sample(first=True)
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()
        return self

    def _run(self):
        while not self._stop.wait(0.5):
            self._sample()

    def stop(self):
        self._stop.set()
        self._t.join()
        self._sample()
        out = {}
        for c in self.clusters:
            ticks = sum(t - self.base.get((c, pid), 0) for pid, t in self.cpu[c].items())
            out[c] = {"cpu_s": round(ticks / CLK, 1), "rss_max_mib": round(self.rss[c] / 1024)}
        return out


def headscale_starts(lab, c, since, until=None):
    """Starts of node c's headscale spawned in [since, until] (the lab records every start)."""
    return len([s for s in lab.node_starts(c, since=since) if until is None or s["t"] <= until])
