#!/usr/bin/python3
"""A swarm of real tailscale control clients (tests/peers/swarm, built by scripts/setup-peers), run as shards.

One shard is one `swarm` process (at most `per_shard` devices, within the 20,000-fd limit: 3 fds per device
at peak, so per_shard <= 6,000; default 2,000), started with `ip netns exec NS` so its devices connect from
the namespace's own address. A shard keeps its devices' identities in <dir>/shard-<k>/identities.json and
appends what each device saw to <dir>/shard-<k>.jsonl (one JSON object a line, wall-clock ms; the format
is in tests/peers/swarm/README.md). <dir>/swarm.json describes the swarm (what stop() and load() read).

    sw = Swarm(dir, server="https://t1.demo.com", authkey_file=..., count=500, prefix="t1-sw",
               netns="hrX-t-t1", ca_file=".../ca.pem").start()
    sw.wait(lambda tl: all(t.netmaps for t in tl.values()), timeout=300)
    watch = SwarmWatch(sw).start()      # same interface as observe.DeviceLogWatch
    ... (a move, a restart) ...
    watch.stop().summary()
    sw.stop()                           # SIGTERM: clients stop without logging out; identities kept
    sw.start()                          # same devices, same keys, no new registration

Timelines (timelines(), Timeline): per device the events in order, as observe.DeviceLogWatch has them for
tailscaled, (t, kind, text) with t in seconds since the epoch and kind one of
  lost (the control connection or a dial failed), netmap (a full netmap; the session is back),
  needs_login, auth_url (a re-authentication), registered, key_changed, id_changed, start, stop, error.

Stdlib only. Usable as a command: swarm.py start|stop|summary --dir DIR ... (see main()).
"""
import argparse
import json
import os
import signal
import subprocess
import sys
import time

from swarm_records import (SwarmWatch, Timeline, interruptions_ms, percentiles,  # noqa: F401 (the API)
                           read_records)

PEERS_DIR = os.environ.get("HEADSHIFT_PEERS_DIR", "/var/cache/headshift-peers")
FDS_PER_DEVICE = 3
FD_LIMIT = 20000
MAX_PER_SHARD = (FD_LIMIT - 64) // FDS_PER_DEVICE // 1000 * 1000  # 6,000


class SwarmError(Exception):
    pass


def swarm_bin():
    path = os.path.join(PEERS_DIR, "bin", "swarm")
    if not os.access(path, os.X_OK):
        raise SwarmError(f"swarm not found at {path}: run scripts/setup-peers (it builds tests/peers/swarm)")
    return path


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ", 1)[1][0] != "Z"
    except OSError:
        return False


class Swarm:
    """N devices named <prefix>-1 .. <prefix>-N over ceil(N / per_shard) shard processes."""

    def __init__(self, dir, server=None, authkey_file=None, count=0, prefix="sw", netns=None, per_shard=2000,
                 concurrency=50, hostname=None, ca_file=None, env=None, binary=None):
        self.dir = os.path.abspath(dir)
        self.info = {"server": server, "authkey_file": authkey_file, "count": count, "prefix": prefix,
                     "netns": netns, "per_shard": per_shard, "concurrency": concurrency, "hostname": hostname,
                     "ca_file": ca_file, "env": env or {}, "binary": binary, "shards": []}
        self._procs = {}

    # ---- description ---------------------------------------------------------------------------------
    def path(self, *parts):
        return os.path.join(self.dir, *parts)

    def save(self):
        os.makedirs(self.dir, exist_ok=True)
        tmp = self.path("swarm.json.tmp")
        with open(tmp, "w") as f:
            json.dump(self.info, f, indent=1)
        os.replace(tmp, self.path("swarm.json"))

    @classmethod
    def load(cls, dir):
        sw = cls(dir)
        with open(sw.path("swarm.json")) as f:
            sw.info = json.load(f)
        return sw

    def devices(self):
        p, n = self.info["prefix"], self.info["count"]
        return [f"{p}-{i}" for i in range(1, n + 1)]

    def record_files(self):
        return [s["record"] for s in self.info["shards"]]

    def pids(self):
        return [s["pid"] for s in self.info["shards"] if s.get("pid")]

    def alive(self):
        """True if every shard process runs."""
        return bool(self.info["shards"]) and all(s.get("pid") and _alive(s["pid"]) for s in self.info["shards"])

    # ---- start / stop --------------------------------------------------------------------------------
    def _validate(self):
        i = self.info
        if not i["server"] or not i["authkey_file"]:
            raise SwarmError("server and authkey_file are required")
        if not os.path.isfile(i["authkey_file"]):
            raise SwarmError(f"auth key file {i['authkey_file']} does not exist")
        if not 1 <= int(i["count"]):
            raise SwarmError("count must be at least 1")
        if not 1 <= int(i["per_shard"]) <= MAX_PER_SHARD:
            raise SwarmError(f"per_shard must be 1..{MAX_PER_SHARD} (fds: {FDS_PER_DEVICE} per device, "
                             f"limit {FD_LIMIT} per process)")

    def start(self):
        """Starts every shard (again, after stop(): same devices, same identities). Returns self."""
        self._validate()
        if self.alive():
            raise SwarmError(f"swarm in {self.dir} is already running")
        os.makedirs(self.dir, exist_ok=True)
        binary = self.info.get("binary") or swarm_bin()
        count, per = int(self.info["count"]), int(self.info["per_shard"])
        shards = []
        env = dict(os.environ)
        env.update(self.info.get("env") or {})
        if self.info.get("ca_file"):
            env["SSL_CERT_FILE"] = self.info["ca_file"]
        for k, first in enumerate(range(1, count + 1, per)):
            n = min(per, count - first + 1)
            sdir = self.path(f"shard-{k}")
            os.makedirs(sdir, mode=0o700, exist_ok=True)
            rec, logp = self.path(f"shard-{k}.jsonl"), self.path(f"shard-{k}.log")
            argv = [binary, "-server", self.info["server"], "-authkey-file", self.info["authkey_file"],
                    "-count", str(n), "-prefix", self.info["prefix"], "-start", str(first), "-state-dir", sdir,
                    "-record", rec, "-concurrency", str(self.info["concurrency"])]
            if self.info.get("hostname"):
                argv += ["-hostname", self.info["hostname"]]
            if self.info.get("netns"):
                argv = ["ip", "netns", "exec", self.info["netns"]] + argv
            with open(logp, "ab") as logf:
                p = subprocess.Popen(argv, stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     start_new_session=True, env=env, cwd=self.dir)
            self._procs[p.pid] = p
            shards.append({"index": k, "first": first, "count": n, "state_dir": sdir, "record": rec,
                           "log": logp, "pid": p.pid})
        self.info["shards"] = shards
        self.save()
        time.sleep(0.3)
        dead = [s for s in shards if not _alive(s["pid"])]
        if dead:
            self.stop()
            tail = ""
            try:
                with open(dead[0]["log"]) as f:
                    tail = f.read()[-600:]
            except OSError:
                pass
            raise SwarmError(f"swarm shard {dead[0]['index']} exited at start: {tail.strip()}")
        return self

    def stop(self, timeout=30.0):
        """SIGTERM to every shard (clients stop without logging out, identities saved), SIGKILL after
        timeout. Returns the shards' exit codes where known."""
        pids = self.pids()
        for pid in pids:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + timeout
        codes = {}
        for pid in pids:
            p = self._procs.get(pid)
            while time.monotonic() < deadline:
                if p is not None:
                    if p.poll() is not None:
                        codes[pid] = p.returncode
                        break
                elif not _alive(pid):
                    break
                time.sleep(0.05)
            else:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                if p is not None:
                    p.wait()
                codes[pid] = -9
        for s in self.info["shards"]:
            s["pid"] = None
        if self.info["shards"]:
            self.save()
        self._procs.clear()
        return codes

    # ---- records -------------------------------------------------------------------------------------
    def records(self, since=None):
        """Every record of every shard (dicts, per file in file order), optionally only t >= since (s)."""
        out = []
        for path in self.record_files():
            out += read_records(path)
        if since is not None:
            ms = since * 1000.0
            out = [r for r in out if r.get("t", 0) >= ms]
        return out

    def timelines(self, since=None):
        """device -> Timeline, for every device of the swarm (a device without records has an empty one)."""
        tl = {d: Timeline(d) for d in self.devices()}
        for r in sorted(self.records(since), key=lambda r: r.get("t", 0)):
            t = tl.get(r.get("dev"))
            if t is not None:
                t.add(r)
        return tl

    def wait(self, predicate, timeout, interval=0.5, since=None):
        """Until predicate(timelines) is true; raises SwarmError naming the time-out. Returns the timelines."""
        deadline = time.monotonic() + timeout
        while True:
            tl = self.timelines(since)
            if predicate(tl):
                return tl
            if not self.alive():
                raise SwarmError(f"a swarm shard exited (logs in {self.dir})")
            if time.monotonic() >= deadline:
                raise SwarmError(f"swarm condition not met within {timeout:.0f} s")
            time.sleep(interval)


def main():
    ap = argparse.ArgumentParser(prog="swarm.py", description="shards of real tailscale control clients")
    ap.add_argument("--dir", required=True, help="the swarm's directory (records, identities, swarm.json)")
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("start", help="start (or restart, with the same identities) the swarm")
    s.add_argument("--server", help="control URL, e.g. https://t1.demo.com")
    s.add_argument("--authkey-file")
    s.add_argument("--count", type=int)
    s.add_argument("--prefix")
    s.add_argument("--netns")
    s.add_argument("--per-shard", type=int)
    s.add_argument("--concurrency", type=int)
    s.add_argument("--hostname")
    s.add_argument("--ca-file")
    sub.add_parser("stop")
    sub.add_parser("summary", help="per device: netmaps, losses, interruptions, re-auths (JSON)")
    a = ap.parse_args()
    try:
        if a.cmd == "start":
            if os.path.exists(os.path.join(a.dir, "swarm.json")):
                sw = Swarm.load(a.dir)
            else:
                sw = Swarm(a.dir)
            for k in ("server", "authkey_file", "count", "prefix", "netns", "per_shard", "concurrency",
                      "hostname", "ca_file"):
                v = getattr(a, k)
                if v is not None:
                    sw.info[k] = v
            sw.start()
            print(json.dumps({"dir": sw.dir, "shards": [{"pid": x["pid"], "first": x["first"], "count": x["count"]}
                                                          for x in sw.info["shards"]]}))
        elif a.cmd == "stop":
            print(json.dumps({"exit_codes": Swarm.load(a.dir).stop()}))
        else:
            sw = Swarm.load(a.dir)
            out = {}
            for d, t in sw.timelines().items():
                out[d] = {"netmaps": len(t.netmaps), "node_key": t.node_key, "node_id": t.node_id, "peers": t.peers,
                          "losses": len(t.losses), "reauths": len(t.reauths), "registrations": len(t.registrations),
                          "interruptions_ms": t.interruptions_ms()}
            print(json.dumps(out, indent=1))
    except SwarmError as e:
        print(f"swarm.py: error: {e}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
