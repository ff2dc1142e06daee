#!/usr/bin/python3
"""A one-node lab for the swarm: real headscale v0.29 (SQLite) behind real Traefik, in one network namespace.

    namespace hsw-<name>: lo only (no route out)
      Traefik   127.0.0.1:80 (web) and 127.0.0.1:443 (websecure, lab CA), router Host(`sw.test`) -> headscale
      headscale 127.0.0.1:8080, server_url https://sw.test, allow-all policy unless a policy is given
      /etc/netns/hsw-<name>/hosts: sw.test -> 127.0.0.1
    the swarm shards run in the same namespace and log in to https://sw.test (so :80 and :443, by host name).

Used by tests/swarm/test_swarm.py and the measurement in tests/swarm/measure.py. Needs root and the peers
built by scripts/setup-peers (headscale, traefik, swarm). Stdlib only (YAML is written as JSON, a subset).
Run it only under the shared lab lock (flock /tmp/headshift-lab.lock) like every `real` test.
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "sandbox", "real"))

import swarm  # noqa: E402

PEERS_DIR = swarm.PEERS_DIR
HOST = "sw.test"


class LabError(Exception):
    pass


def run(argv, check=True, timeout=60, input=None):
    p = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, input=input)
    if check and p.returncode != 0:
        raise LabError(f"{' '.join(argv)} exited {p.returncode}: {(p.stderr or '').strip()[-800:]}")
    return p


def peer(name):
    p = os.path.join(PEERS_DIR, "traefik", "traefik") if name == "traefik" else os.path.join(PEERS_DIR, "bin", name)
    if not os.access(p, os.X_OK):
        raise LabError(f"{name} not found at {p}: run scripts/setup-peers")
    return p


def _alive(pid):
    return swarm._alive(pid)


def stop_pid(pid, grace=10.0):
    if not pid or not _alive(pid):
        return
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and _alive(pid):
        time.sleep(0.05)
    if _alive(pid):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


class SwarmLab:
    def __init__(self, name="t", state_dir=None):
        if not name.isalnum() or len(name) > 6:
            raise LabError("lab name: 1-6 letters or digits")
        self.name = name
        self.ns = f"hsw-{name}"
        self.dir = os.path.abspath(state_dir or f"/tmp/headshift-swarm-{name}")
        self.pids = {}
        self._procs = {}

    def path(self, *p):
        return os.path.join(self.dir, *p)

    def in_ns(self, argv):
        return ["ip", "netns", "exec", self.ns] + argv

    def spawn(self, key, argv, env=None):
        logf = open(self.path(f"{key}.log"), "ab")
        e = dict(os.environ)
        e.update(env or {})
        p = subprocess.Popen(self.in_ns(argv), stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                             start_new_session=True, env=e, cwd=self.dir)
        logf.close()
        self.pids[key] = p.pid
        self._procs[p.pid] = p
        return p.pid

    def _stop(self, pid, grace=10.0):
        stop_pid(pid, grace)
        p = self._procs.pop(pid, None)
        if p is not None:
            p.wait()

    def wait(self, what, fn, timeout, interval=0.2):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if fn():
                return
            time.sleep(interval)
        raise LabError(f"{what} not ready within {timeout} s (logs in {self.dir})")

    # ---- up / down ---------------------------------------------------------------------------------------
    def up(self, policy=None, tuning=None):
        if os.geteuid() != 0:
            raise LabError("the swarm lab needs root (network namespace)")
        self.down()
        os.makedirs(self.dir)
        run(["ip", "netns", "add", self.ns])
        run(["ip", "-n", self.ns, "link", "set", "lo", "up"])
        etc = f"/etc/netns/{self.ns}"
        os.makedirs(etc, exist_ok=True)
        with open(os.path.join(etc, "hosts"), "w") as f:
            f.write(f"127.0.0.1 localhost {HOST}\n")
        with open(os.path.join(etc, "resolv.conf"), "w") as f:
            f.write("# swarm lab: names come from /etc/hosts\n")
        self._tls()
        self._headscale_config(policy, tuning)
        self.start_headscale()
        self._traefik()
        uid = json.loads(self.headscale(["users", "create", "sw", "-o", "json"]))["id"]
        key = json.loads(self.headscale(["preauthkeys", "create", "-u", str(uid), "--reusable", "-e", "24h",
                                         "-o", "json"]))["key"]
        fd = os.open(self.path("authkey"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(key)
        return self

    def _tls(self):
        d = self.path("tls")
        os.makedirs(d)
        ossl = shutil.which("openssl") or "/usr/bin/openssl"
        run([ossl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout",
             f"{d}/ca.key", "-out", f"{d}/ca.pem", "-days", "3", "-subj", "/CN=headshift swarm lab CA"])
        run([ossl, "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout",
             f"{d}/edge.key", "-out", f"{d}/edge.csr", "-subj", f"/CN={HOST}"])
        with open(f"{d}/ext.cnf", "w") as f:
            f.write(f"subjectAltName=DNS:{HOST}\nextendedKeyUsage=serverAuth\n")
        run([ossl, "x509", "-req", "-in", f"{d}/edge.csr", "-CA", f"{d}/ca.pem", "-CAkey", f"{d}/ca.key",
             "-CAcreateserial", "-out", f"{d}/edge.pem", "-days", "3", "-extfile", f"{d}/ext.cnf"])
        self.ca = f"{d}/ca.pem"

    def _headscale_config(self, policy, tuning):
        derp = self.path("derp.yaml")
        # headscale refuses an empty DERP map; swarm devices never use DERP (no data plane), so a region
        # nothing listens on is enough. (Written as YAML: the region id must be an integer key.)
        with open(derp, "w") as f:
            f.write("regions:\n  900:\n    regionid: 900\n    regioncode: lab\n    regionname: lab\n    nodes:\n"
                    "      - {name: 900a, regionid: 900, hostname: derp.invalid, ipv4: 127.0.0.2, ipv6: none,"
                    " stunport: 3478, derpport: 8443}\n")
        pol = ""
        if policy is not None:
            pol = self.path("policy.json")
            with open(pol, "w") as f:
                json.dump(policy, f)
        cfg = {
            "server_url": f"https://{HOST}",
            "listen_addr": "127.0.0.1:8080",
            "metrics_listen_addr": "127.0.0.1:9090",
            "grpc_listen_addr": "127.0.0.1:50443",
            "grpc_allow_insecure": False,
            "noise": {"private_key_path": self.path("noise_private.key")},
            "prefixes": {"v4": "100.64.0.0/10", "v6": "fd7a:115c:a1e0::/48", "allocation": "sequential"},
            "derp": {"server": {"enabled": False}, "urls": [], "paths": [derp], "auto_update_enabled": False},
            "disable_check_updates": True,
            "node": {"expiry": 0},
            "database": {"type": "sqlite", "sqlite": {"path": self.path("db.sqlite"), "write_ahead_log": True}},
            "log": {"level": "info", "format": "text"},
            "policy": {"mode": "file", "path": pol},
            "dns": {"magic_dns": False, "override_local_dns": False, "nameservers": {"global": []}},
            "unix_socket": self.path("headscale.sock"),
            "unix_socket_permission": "0770",
            "logtail": {"enabled": False},
            "taildrop": {"enabled": False},
        }
        if tuning:
            cfg["tuning"] = tuning
        with open(self.path("headscale.yaml"), "w") as f:
            json.dump(cfg, f, indent=1)  # JSON is YAML

    def headscale(self, args, timeout=60):
        return run([peer("headscale"), "-c", self.path("headscale.yaml")] + args, timeout=timeout).stdout

    def health(self):
        p = run(self.in_ns([sys.executable, "-c", "import urllib.request,sys;"
                            "sys.exit(urllib.request.urlopen('http://127.0.0.1:8080/health',timeout=2).status!=200)"]),
                check=False, timeout=10)
        return p.returncode == 0

    def start_headscale(self):
        self.spawn("headscale", [peer("headscale"), "-c", self.path("headscale.yaml"), "serve"])
        self.wait("headscale", self.health, 60)

    def stop_headscale(self):
        self._stop(self.pids.pop("headscale", None))

    def restart_headscale(self):
        """Stop and start (same database and Noise key): every control connection drops."""
        self.stop_headscale()
        self.start_headscale()

    def _traefik(self):
        dyn = self.path("traefik-dynamic")
        os.makedirs(dyn)
        static = {"entryPoints": {"web": {"address": "127.0.0.1:80"},
                                  "websecure": {"address": "127.0.0.1:443", "http": {"tls": {}}},
                                  "traefik": {"address": "127.0.0.1:8081"}},
                  "providers": {"file": {"directory": dyn, "watch": False}},
                  "log": {"level": "ERROR"}, "ping": {"entryPoint": "traefik"}}
        with open(self.path("traefik.yml"), "w") as f:
            json.dump(static, f)
        d = self.path("tls")
        dynamic = {"http": {"routers": {"sw": {"rule": f"Host(`{HOST}`)", "entryPoints": ["web", "websecure"],
                                               "service": "hs"}},
                            "services": {"hs": {"loadBalancer": {"servers": [{"url": "http://127.0.0.1:8080"}]}}}},
                   "tls": {"stores": {"default": {"defaultCertificate": {"certFile": f"{d}/edge.pem",
                                                                         "keyFile": f"{d}/edge.key"}}}}}
        with open(os.path.join(dyn, "sw.yml"), "w") as f:
            json.dump(dynamic, f)
        self.spawn("traefik", [peer("traefik"), f"--configFile={self.path('traefik.yml')}"])

        def ready():
            p = run(self.in_ns([sys.executable, "-c", "import urllib.request as u,sys;"
                                f"sys.exit(u.urlopen('http://{HOST}/health',timeout=2).status!=200)"]),
                    check=False, timeout=10)
            return p.returncode == 0
        self.wait("Traefik routing to headscale", ready, 30)

    # ---- the swarm -----------------------------------------------------------------------------------------
    def swarm(self, count, per_shard=2000, concurrency=50, prefix="sw"):
        return swarm.Swarm(self.path("swarm"), server=f"https://{HOST}", authkey_file=self.path("authkey"),
                           count=count, prefix=prefix, netns=self.ns, per_shard=per_shard, concurrency=concurrency,
                           ca_file=self.ca)

    def nodes(self):
        """headscale's own view (its gRPC API through the CLI): name -> {id, online, node_key}."""
        out = json.loads(self.headscale(["nodes", "list", "-o", "json"], timeout=120) or "[]")
        return {n.get("given_name") or n.get("name"): {"id": int(n["id"]), "online": bool(n.get("online")),
                                                        "node_key": n.get("node_key")} for n in out}

    def rss_kib(self, key="headscale"):
        try:
            with open(f"/proc/{self.pids[key]}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        return int(line.split()[1])
        except (OSError, KeyError):
            return None

    def down(self):
        for key in list(self.pids):
            self._stop(self.pids.pop(key))
        listed = run(["ip", "netns", "list"], check=False).stdout.split()
        if self.ns in listed:
            for pid in run(["ip", "netns", "pids", self.ns], check=False).stdout.split():
                stop_pid(int(pid), grace=5)
            run(["ip", "netns", "del", self.ns], check=False)
        shutil.rmtree(f"/etc/netns/{self.ns}", ignore_errors=True)
        shutil.rmtree(self.dir, ignore_errors=True)
