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
import threading
import time

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


def read_records(path):
    """The complete lines of a record file as dicts (a last line still being written is skipped)."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return []
    out = []
    for raw in data.split(b"\n")[:-1]:
        if raw.strip():
            try:
                out.append(json.loads(raw))
            except ValueError:
                continue
    return out


class Timeline:
    """What one swarm device saw, in time order (see the module doc)."""

    def __init__(self, device):
        self.device = device
        self.records = []
        self.events = []  # (t_seconds, kind, text), kinds as observe.DeviceLogWatch plus the swarm's own
        self.node_key = None
        self.node_id = None
        self.peers = None

    def add(self, r):
        self.records.append(r)
        ev, t = r.get("ev"), r.get("t", 0) / 1000.0
        text = r.get("err") or r.get("url") or ""
        if ev == "auth_url":
            text = "AuthURL"  # the URL itself is not kept in timelines
        self.events.append((t, ev, text))
        if ev == "netmap":
            self.node_key, self.node_id, self.peers = r.get("node_key"), r.get("node_id"), r.get("peers")

    @property
    def netmaps(self):
        return [r for r in self.records if r.get("ev") == "netmap"]

    @property
    def losses(self):
        return [e for e in self.events if e[1] == "lost"]

    @property
    def reauths(self):
        return [e for e in self.events if e[1] in ("needs_login", "auth_url")]

    @property
    def registrations(self):
        return [e for e in self.events if e[1] == "registered"]

    def node_keys(self):
        return sorted({r["node_key"] for r in self.netmaps if r.get("node_key")})

    def node_ids(self):
        return sorted({r["node_id"] for r in self.netmaps if r.get("node_id")})

    def interruptions_ms(self):
        """Per control-connection loss: ms until the next netmap (None if none came), as observe.py."""
        return interruptions_ms(self.events)


def interruptions_ms(events):
    out, pending = [], None
    for t, kind, _ in events:
        if kind == "lost" and pending is None:
            pending = t
        elif kind == "netmap" and pending is not None:
            out.append((t - pending) * 1000.0)
            pending = None
    if pending is not None:
        out.append(None)
    return out


def percentiles(values):
    if not values:
        return {"n": 0, "p50": None, "p99": None, "max": None}
    v = sorted(values)

    def pick(q):
        return round(v[min(len(v) - 1, int(round(q * (len(v) - 1))))], 1)
    return {"n": len(v), "p50": pick(0.5), "p99": pick(0.99), "max": round(v[-1], 1)}


class SwarmWatch:
    """observe.DeviceLogWatch for swarm devices: follows the shards' record files from their current end.

    start() / stop(); events[d] = [(t_seconds_since_epoch, kind, text)], losses(d), reauths(d),
    interruptions_ms(d), summary(devices) with the same shapes as DeviceLogWatch."""

    KINDS = ("lost", "netmap", "needs_login", "auth_url", "registered", "key_changed", "id_changed")

    def __init__(self, swarm, devices=None, interval=0.05):
        self.swarm = swarm
        self.devices = list(devices) if devices is not None else swarm.devices()
        self.interval = interval
        self.events = {d: [] for d in self.devices}
        self.netmaps = {d: [] for d in self.devices}
        self._offsets = {}
        self._partial = {}
        self._stop = threading.Event()
        self._thread = None
        self._lock = threading.Lock()

    def start(self):
        for path in self.swarm.record_files():
            try:
                self._offsets[path] = os.path.getsize(path)
            except FileNotFoundError:
                self._offsets[path] = 0
            self._partial[path] = b""
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self):
        while not self._stop.is_set():
            self._poll()
            self._stop.wait(self.interval)
        time.sleep(0.2)  # the shards flush every 100 ms
        self._poll()

    def _poll(self):
        for path, off in list(self._offsets.items()):
            try:
                with open(path, "rb") as f:
                    f.seek(off)
                    chunk = f.read()
            except FileNotFoundError:
                continue
            if not chunk:
                continue
            self._offsets[path] = off + len(chunk)
            lines = (self._partial[path] + chunk).split(b"\n")
            self._partial[path] = lines.pop()
            new = []
            for raw in lines:
                try:
                    new.append(json.loads(raw))
                except ValueError:
                    continue
            with self._lock:
                for r in new:
                    d = r.get("dev")
                    if d not in self.events or r.get("ev") not in self.KINDS:
                        continue
                    self.events[d].append((r["t"] / 1000.0, r["ev"], r.get("err") or ""))
                    self.events[d].sort(key=lambda e: e[0])
                    if r["ev"] == "netmap":
                        self.netmaps[d].append(r)

    def stop(self):
        self._stop.set()
        if self._thread:
            self._thread.join()
        return self

    def losses(self, d):
        with self._lock:
            return [e for e in self.events[d] if e[1] == "lost"]

    def reauths(self, d):
        with self._lock:
            return [e for e in self.events[d] if e[1] in ("needs_login", "auth_url")]

    def interruptions_ms(self, d):
        with self._lock:
            return interruptions_ms(list(self.events[d]))

    def identity_changes(self, d):
        """Events where the device's node key or node ID changed, plus netmaps that disagree with the first."""
        with self._lock:
            bad = [e for e in self.events[d] if e[1] in ("key_changed", "id_changed")]
            nms = self.netmaps[d]
            if nms:
                k0, i0 = nms[0].get("node_key"), nms[0].get("node_id")
                bad += [(r["t"] / 1000.0, "netmap_identity", f"{r.get('node_key')} {r.get('node_id')}")
                        for r in nms if (r.get("node_key"), r.get("node_id")) != (k0, i0)]
            return bad

    def summary(self, devices=None):
        devices = devices or self.devices
        inter, unrecovered, disconnected, reauth, changed = [], [], [], [], []
        for d in devices:
            iv = self.interruptions_ms(d)
            if iv:
                disconnected.append(d)
            for v in iv:
                if v is None:
                    unrecovered.append(d)
                else:
                    inter.append(v)
            if self.reauths(d):
                reauth.append(d)
            if self.identity_changes(d):
                changed.append(d)
        return {"devices": len(devices), "disconnected": sorted(disconnected), "reconnected_within": len(inter),
                "unrecovered": sorted(set(unrecovered)), "reauth": sorted(reauth), "identity_changed": sorted(changed),
                "interruption_ms": percentiles(inter)}


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
