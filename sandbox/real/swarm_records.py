"""Reading what swarm devices recorded (tests/peers/swarm/README.md has the record format): per-device
timelines, and SwarmWatch, which follows the records like observe.DeviceLogWatch follows tailscaled logs.

Times are seconds since the epoch (the records' wall-clock ms / 1000). Stdlib only; swarm.py re-exports all.
"""
import json
import os
import threading
import time


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

    KINDS = ("lost", "netmap", "needs_login", "auth_url", "registered", "key_changed", "id_changed", "error")

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

    def events_of(self, d):
        """A copy of device d's events so far: [(t, kind, text)], kinds KINDS ("error": text = the error)."""
        with self._lock:
            return list(self.events[d])

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


def first_losses(watch, devices=None, since=None):
    """device -> time (s since the epoch) of its first control-connection loss at or after `since`, for the
    devices of a SwarmWatch that lost their connection."""
    out = {}
    for d in devices or watch.devices:
        ts = [t for t, _, _ in watch.losses(d) if since is None or t >= since]
        if ts:
            out[d] = min(ts)
    return out


RESET_ERROR = "connection reset by peer"


def reset_times(watch, devices=None, since=None):
    """device -> when its session was reset (s since the epoch): its first loss at or after `since` whose error
    (the client's next `error` record) is a TCP reset, which is what a session reset (SOCK_DESTROY on the proxy)
    gives; a device whose losses all had another cause (e.g. "EOF": the proxy closed it when the route changed)
    gets its last loss instead. Only devices that lost their connection."""
    out = {}
    for d in devices or watch.devices:
        evs = [e for e in watch.events_of(d) if since is None or e[0] >= since]
        lost = [i for i, e in enumerate(evs) if e[1] == "lost"]
        if not lost:
            continue
        out[d] = evs[lost[-1]][0]
        for i in lost:
            err = next((e for e in evs[i + 1:] if e[1] in ("error", "lost", "netmap")), None)
            if err and err[1] == "error" and RESET_ERROR in err[2]:
                out[d] = evs[i][0]
                break
    return out


def waves(times, gap_s=0.2):
    """Groups disconnect times (seconds) into waves: a gap of more than gap_s between two consecutive
    disconnects starts a new wave. A paced reset destroys one wave's sessions within milliseconds and the next
    wave waits for the previous one to come back (a reconnect takes a dial, TLS, Noise and a first map: far
    more than 0.2 s), so the waves the devices saw are these groups. Returns [[times of wave 1], ...]."""
    out = []
    for t in sorted(times):
        if out and t - out[-1][-1] <= gap_s:
            out[-1].append(t)
        else:
            out.append([t])
    return out
