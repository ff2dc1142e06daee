"""What the real devices saw during a move: the evidence the real-peer tests, demo and benchmark assert on.

Everything here is read from the peers themselves, never from headshift's report:
  DeviceLogWatch  follows every tailscaled's log as it is written (5 ms polls) and stamps each line on arrival
                  (tailscaled's own timestamps have 1 s resolution): control-connection losses
                  ("control: PollNetMap: <error>"), the first netmap after each loss (the session is back),
                  and state changes to NeedsLogin (a re-authentication).
  DataProbe       pings between two devices over WireGuard (TSMP through the tunnel, not the control plane)
                  in a loop and counts the lost probes.
  snapshot()      `tailscale status --json` of every device: BackendState, Self.ID, node key, AuthURL.
  stale_drops()   the node IDs whose long poll a headscale node closed itself as stale (its log: a map it could not
                  queue to the stream within 50 ms, mapper/node_conn.go), i.e. a client that fell behind reading.
  SwarmWatch      (swarm_records.py, re-exported) the same as DeviceLogWatch for swarm devices (lab_swarm.py): it
                  follows the swarm's own records (losses, first netmaps, NeedsLogin / AuthURL, key or ID changes).
"""
import calendar
import os
import re
import threading
import time

from swarm_records import SwarmWatch, percentiles  # noqa: F401 - SwarmWatch re-exported: the swarm devices' DeviceLogWatch

_POLL_ERROR = re.compile(r"control: PollNetMap: (?!stream=)(.*)$")
_NETMAP = "control: mapRoutine: netmap received"
_NEEDS_LOGIN = re.compile(r"Switching ipn state \S+ -> NeedsLogin")
_AUTH_URL = re.compile(r"AuthURL is|authURL=|StartLoginInteractive")
_STALE_DROP = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ) WRN send: connection failed "
                         r"error=\"connection \d+: timeout sending to channel.* node\.id=(\d+)")


class DeviceLogWatch:
    """Follows tailscaled logs from their current end. start() / stop(); then per-device events."""

    def __init__(self, lab, devices, interval=0.005):
        self.lab = lab
        self.devices = list(devices)
        self.interval = interval
        self.events = {d: [] for d in self.devices}  # (t_monotonic, kind, text)
        self._files = {}
        self._partial = {d: b"" for d in self.devices}
        self._stop = threading.Event()
        self._thread = None

    def start(self):
        for d in self.devices:
            f = open(self.lab.path("logs", f"tailscaled-{d}.log"), "rb")
            f.seek(0, os.SEEK_END)
            self._files[d] = f
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self):
        while not self._stop.is_set():
            self._poll()
            time.sleep(self.interval)
        self._poll()

    def _poll(self):
        now = time.monotonic()
        for d, f in self._files.items():
            chunk = f.read()
            if not chunk:
                continue
            data = self._partial[d] + chunk
            lines = data.split(b"\n")
            self._partial[d] = lines.pop()
            for raw in lines:
                line = raw.decode("utf-8", "replace")
                m = _POLL_ERROR.search(line)
                if m:
                    self.events[d].append((now, "lost", m.group(1)))
                elif _NETMAP in line:
                    self.events[d].append((now, "netmap", ""))
                elif _NEEDS_LOGIN.search(line):
                    self.events[d].append((now, "needs_login", line))
                elif _AUTH_URL.search(line):
                    self.events[d].append((now, "auth_url", line))

    def stop(self):
        self._stop.set()
        if self._thread:
            self._thread.join()
        for f in self._files.values():
            f.close()
        return self

    def losses(self, d):
        return [e for e in self.events[d] if e[1] == "lost"]

    def reauths(self, d):
        return [e for e in self.events[d] if e[1] in ("needs_login", "auth_url")]

    def interruptions_ms(self, d):
        """Per control-connection loss: ms until the next netmap (None if none came)."""
        out = []
        pending = None
        for t, kind, _ in self.events[d]:
            if kind == "lost" and pending is None:
                pending = t
            elif kind == "netmap" and pending is not None:
                out.append((t - pending) * 1000.0)
                pending = None
        if pending is not None:
            out.append(None)
        return out

    def summary(self, devices=None):
        devices = devices or self.devices
        inter = []
        unrecovered = []
        disconnected = []
        reauth = []
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
        return {"devices": len(devices), "disconnected": sorted(disconnected), "reconnected_within": len(inter),
                "unrecovered": sorted(set(unrecovered)), "reauth": sorted(reauth),
                "interruption_ms": percentiles(inter)}


class DataProbe:
    """TSMP pings (through WireGuard) from device `src` to device `dst`, every `interval` s, in a thread."""

    def __init__(self, lab, src, dst, interval=0.1, timeout="1s"):
        self.lab, self.src, self.dst = lab, src, dst
        ips = lab.device_status(dst).get("ips") or []
        if not ips:
            raise RuntimeError(f"device {dst} has no tailnet address (not Running?)")
        self.dst_ip = ips[0]
        self.interval, self.timeout = interval, timeout
        self.sent = self.lost = 0
        self.lost_at = []
        self._stop = threading.Event()
        self._thread = None

    def _ping(self, mode="--tsmp"):  # mode None: a disco ping (sets up the path, not through WireGuard)
        tenant = self.src.rsplit("-", 1)[0]
        sock = self.lab.path("devices", self.src, "tailscaled.sock")
        p = self.lab.run_in_tenant(tenant, [self.lab.tailscale_bin(), f"--socket={sock}", "ping"] +
                                   ([mode] if mode else []) + ["-c", "1", f"--timeout={self.timeout}", self.dst_ip],
                                   timeout=30)
        return p.returncode == 0 and "pong" in p.stdout

    def warm_up(self, timeout=30):
        """A disco ping sets up the direct path, then TSMP must answer before the probe counts."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._ping(mode=None)
            if self._ping():
                return True
            time.sleep(0.2)
        return False

    def start(self):
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self):
        while not self._stop.is_set():
            t0 = time.monotonic()
            ok = self._ping()
            self.sent += 1
            if not ok:
                self.lost += 1
                self.lost_at.append(t0)
            rest = self.interval - (time.monotonic() - t0)
            if rest > 0:
                self._stop.wait(rest)

    def stop(self):
        self._stop.set()
        if self._thread:
            self._thread.join()
        return {"sent": self.sent, "lost": self.lost}


def snapshot(lab, devices):
    return {d: lab.device_status(d) for d in devices}


def identity_changes(before, after):
    """Devices whose Self.ID, node key or tailnet IPs differ, or that are not Running / ask for a login."""
    bad = {}
    for d, b in before.items():
        a = after.get(d) or {}
        why = []
        if a.get("backend_state") != "Running":
            why.append(f"state {a.get('backend_state')}")
        if a.get("auth_url"):
            why.append("AuthURL set")
        for k in ("id", "node_key", "ips"):
            if a.get(k) != b.get(k):
                why.append(f"{k} {b.get(k)} -> {a.get(k)}")
        if why:
            bad[d] = why
    return bad


def online_on_node(lab, cluster, user=None):
    """node name -> online, as the node's own API says."""
    path = "/api/v1/node" + (f"?user={user}" if user else "")
    nodes = lab.node_api(cluster, path).get("nodes", [])
    return {n.get("givenName") or n.get("name"): bool(n.get("online")) for n in nodes}


def node_ids(lab, cluster):
    return sorted(int(n["id"]) for n in lab.node_api(cluster, "/api/v1/node").get("nodes", []))


def stale_drops(lab, cluster, since=0.0):
    """{node_id: [t, ...]}: the long polls headscale node `cluster` closed itself since `since` (s since the
    epoch) because the client fell behind reading its maps.

    headscale v0.29 queues each map into the session's channel (tuning.node_mapsession_buffered_chan_size,
    30); a queue that stays full for 50 ms reads as a dead client, and the session is torn down
    (hscontrol/mapper/node_conn.go, "timeout sending to channel (likely stale connection)"). The client then
    sees its poll end with EOF, not a reset. On a box whose CPUs are saturated (hundreds of swarm devices
    decoding maps on 2 shared cores) this happens with or without a move. Log lines have 1 s resolution."""
    out = {}
    try:
        f = open(lab.path("logs", f"headscale-{cluster}.log"), encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return out
    with f:
        for line in f:
            m = _STALE_DROP.match(line)
            if not m:
                continue
            t = calendar.timegm(time.strptime(m.group(1), "%Y-%m-%dT%H:%M:%SZ"))
            if t >= int(since):
                out.setdefault(int(m.group(2)), []).append(float(t))
    return out
