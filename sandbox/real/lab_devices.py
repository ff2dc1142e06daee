"""The real-peer lab's devices: one namespace per tenant (its own public source address, <tenant>.demo.com
resolving to the edge through /etc/netns/<ns>/hosts), its user and pre-auth key on its home node, and its
tailscaled devices; what each device says (`tailscale status --json`) and the waits on them. A mixin of
reallab.Lab. A tenant namespace can host more processes: spawn_in_tenant / run_in_tenant."""
import json
import os
import subprocess

import labkit
from labkit import LabError, run, wait_for
from lab_nodes import peer_bin

TAILSCALED_BASE_PORT = 41000


class DevicesMixin:
    def _tenant_network(self, i, t, tenants):
        """Namespace hr<L>-t-<t>: 198.18.<i>.2 on a veth to hr<L>-dc (the tenant's public address), default route
        there, /etc/netns hosts naming every tenant's <t>.demo.com as the edge."""
        dc, tns = self.ns("dc"), self.add_netns(f"t-{t}")
        self.info["namespaces"].append(tns)
        self.save()
        a, b = self.link(f"t{i}"), self.link(f"u{i}")
        self.add_veth(a, b, dc, tns)
        labkit.addr_up(a, f"198.18.{i}.1/24", dc)
        labkit.addr_up(b, f"198.18.{i}.2/24", tns)
        run(["ip", "-n", tns, "route", "add", "default", "via", f"198.18.{i}.1"])
        self.write_etc(tns, {
            "hosts": "127.0.0.1 localhost\n" + f"{self.edge_ip()} " + " ".join(f"{x}.demo.com" for x in tenants) +
                     f"\n{self.derp_ip()} derp.demo.com\n",
            "resolv.conf": "# real-peer lab: names come from /etc/hosts\n"})

    def tenant_ns(self, t):
        return self.info["tenants"][t]["ns"]

    def spawn_in_tenant(self, t, key, argv, env=None, log_name=None):
        """Another process in tenant t's namespace (its address, its /etc/hosts), recorded and torn down with
        the lab like the devices; returns its pid."""
        return self.spawn(key, argv, netns=self.tenant_ns(t), env=env, log_name=log_name)

    def run_in_tenant(self, t, argv, check=False, timeout=20):
        return run(["ip", "netns", "exec", self.tenant_ns(t)] + list(argv), check=check, timeout=timeout)

    def _tenant(self, i, t, home, devices):
        c = home
        out = self.headscale(c, ["users", "create", t, "-o", "json"])
        uid = json.loads(out)["id"]
        out = self.headscale(c, ["preauthkeys", "create", "-u", str(uid), "--reusable", "-e", "24h", "-o", "json"])
        key = json.loads(out)["key"]
        self.info["tenants"][t] = {"home": c, "ns": self.ns(f"t-{t}"), "address": f"198.18.{i}.2",
                                   "host": f"{t}.demo.com", "authkey_file": self._secret(f"authkey_{t}", key),
                                   "devices": [f"{t}-{k + 1}" for k in range(devices)], "user_id": uid}
        self.save()


    def _start_devices(self, tenants):
        base_port = TAILSCALED_BASE_PORT
        for ti, t in enumerate(tenants):
            tinfo = self.info["tenants"][t]
            for k, dev in enumerate(tinfo["devices"]):
                d = self.path("devices", dev)
                os.makedirs(d, exist_ok=True)
                self.spawn(f"tailscaled-{dev}",
                           [peer_bin("tailscaled"), "--tun=userspace-networking", f"--statedir={d}",
                            f"--socket={d}/tailscaled.sock", f"--port={base_port + k}", "--no-logs-no-support",
                            "--verbose=1"],
                           netns=tinfo["ns"], log_name=f"tailscaled-{dev}",
                           # TS_DEBUG_LOG_RATE=all: tailscaled rate-limits each log format to 5 lines
                           # per 5 s (types/logger RateLimitedFn), which can swallow the "netmap received"
                           # line the observer (observe.py) counts as the session being back.
                           env={"TS_LOGS_DIR": d, "TS_NO_LOGS_NO_SUPPORT": "true", "TS_DEBUG_LOG_RATE": "all",
                                "SSL_CERT_FILE": self.info["tls"]["ca"]})
        for t in tenants:
            tinfo = self.info["tenants"][t]
            procs = []
            for dev in tinfo["devices"]:
                # A tagged server registers with its own tagged key (lab_policy.py).
                keyfile = tinfo.get("authkeys", {}).get(dev, tinfo["authkey_file"])
                sock = self.path("devices", dev, "tailscaled.sock")
                wait_for(f"tailscaled {dev} socket", lambda: os.path.exists(sock), 30)
                # --authkey=file:PATH keeps the key off the command line.
                procs.append((dev, subprocess.Popen(
                    ["ip", "netns", "exec", tinfo["ns"], peer_bin("tailscale"), f"--socket={sock}", "up",
                     f"--login-server=http://{tinfo['host']}", f"--auth-key=file:{keyfile}",
                     f"--hostname={dev}", "--accept-dns=false", "--timeout=60s"],
                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)))
            for dev, p in procs:
                out, _ = p.communicate(timeout=90)
                if p.returncode != 0:
                    raise LabError(f"tailscale up on {dev} failed (exit {p.returncode}): {out.strip()[-500:]}")

    # ---- device views ------------------------------------------------------------------------------
    def tailscale_bin(self):
        return peer_bin("tailscale")

    def device_status(self, dev):
        t = dev.rsplit("-", 1)[0]
        sock = self.path("devices", dev, "tailscaled.sock")
        p = self.run_in_tenant(t, [peer_bin("tailscale"), f"--socket={sock}", "status", "--json", "--peers=false"])
        if p.returncode != 0:
            return {"device": dev, "error": p.stderr.strip()[-300:]}
        s = json.loads(p.stdout)
        self_ = s.get("Self") or {}
        return {"device": dev, "backend_state": s.get("BackendState"), "auth_url": s.get("AuthURL", ""),
                "id": self_.get("ID"), "node_key": self_.get("PublicKey"), "online": self_.get("Online"),
                "ips": self_.get("TailscaleIPs") or []}

    def devices(self, tenant=None):
        out = []
        for t, ti in self.info["tenants"].items():
            if tenant is None or t == tenant:
                out += ti["devices"]
        return out

    def wait_running(self, timeout=120):
        def all_running():
            bad = [d for d in self.devices() if self.device_status(d).get("backend_state") != "Running"]
            if bad:
                self._not_running = bad
            return not bad
        self._not_running = []
        try:
            wait_for("devices Running", all_running, timeout, interval=0.5)
        except LabError as e:
            raise LabError(f"{e}: not Running: {', '.join(self._not_running[:10])}") from None


    def wait_online(self, timeout=120, skip_down=False):
        """Until every device is online on some node whose database holds its row (that node's own API,
        `online`; mid-move a row is on both nodes and the device on one). BackendState stays Running while
        a device's control connection is down, so tests that count disconnections start from here: a
        device still backing off after an earlier restart would otherwise be counted against the next move."""
        def all_online():
            problems, rows, online = [], set(), set()
            for c in self.info["nodes"]:
                if skip_down and not self.node_answers(c):
                    continue
                rows |= set(filter(None, self.psql(f"hs{c}", "SELECT given_name FROM nodes WHERE deleted_at IS NULL")
                                   .splitlines()))
                try:
                    online |= {n.get("givenName") or n.get("name")
                               for n in self.node_api(c, "/api/v1/node")["nodes"] if n.get("online")}
                except Exception as e:  # a node that is starting: not settled yet
                    problems.append(f"node {c}: {e}")
            self._not_online = problems + sorted(rows - online)
            return not self._not_online
        self._not_online = []
        try:
            wait_for("devices online on their node", all_online, timeout, interval=0.5)
        except LabError as e:
            raise LabError(f"{e}: not online: {', '.join(self._not_online[:10])}") from None

