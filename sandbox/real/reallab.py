#!/usr/bin/python3
"""Real-peer lab: real headscale nodes, real Traefik (or HAProxy) and real tailscaled devices.

Unlike the stand-in lab (`headshift sandbox up`, C++ stand-ins for headscale and the client fleet, made
for thousands of clients), every peer here is the real program the users run:

  root netns (headshift)  --veth--  hr<L>-dc   edge proxy 10.<B>.0.1:80   (Traefik file provider + API :8081,
                                              or HAProxy with a tenants map + admin socket)
                                              headscale node per cluster 10.<B>.0.<10+i>:8080 (plain HTTP,
                                              one shared Noise key, one PostgreSQL database each)
  hr<L>-t-<tenant>  --veth--  hr<L>-dc        that tenant's tailscaled devices (userspace networking), its
                                              own public source address 198.18.<i>.2, <tenant>.demo.com
                                              resolving to the edge (/etc/netns/<ns>/hosts)
  PostgreSQL in the state dir (unix socket only), database hs<cluster> per headscale node (stock schema,
  no cluster_id: the `split` layout with `cluster_column: none`).

`up` registers every device with a pre-auth key on its tenant's home node and waits until all are Running.
It writes <state>/headshift.yaml for `headshift --config`, and <state>/lab.json (everything `down` removes).
`down` removes every namespace, veth, process and file, also from leftovers alone. A failure during `up`
takes down what was made. `restart-node` is the clusters' reload_command (headscale >= 0.27 loads its nodes
only at start). `status --json` reports, per device, what the device itself says (`tailscale status --json`).

Requires root, the peers built by scripts/setup (HEADSHIFT_PEERS_DIR, default /var/cache/headshift-peers),
postgresql, haproxy, iproute2, python3-yaml.
"""
import argparse
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request

import yaml

PEERS_DIR = os.environ.get("HEADSHIFT_PEERS_DIR", "/var/cache/headshift-peers")
HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))


class LabError(Exception):
    pass


def log(msg):
    print(f"reallab: {msg}", file=sys.stderr, flush=True)


def run(argv, check=True, capture=True, timeout=60, env=None, input=None):
    p = subprocess.run(argv, capture_output=capture, text=True, timeout=timeout, env=env, input=input)
    if check and p.returncode != 0:
        raise LabError(f"{' '.join(argv)} exited {p.returncode}: {(p.stderr or '').strip()[-800:]}")
    return p


def peer_bin(name):
    if name == "traefik":
        path = os.path.join(PEERS_DIR, "traefik", "traefik")
    else:
        path = os.path.join(PEERS_DIR, "bin", name)
    if not os.access(path, os.X_OK):
        raise LabError(f"{name} not found at {path}: run scripts/setup (it builds/installs the real peers)")
    return path


def sys_bin(name, dirs=("/usr/sbin", "/usr/bin", "/usr/local/bin", "/usr/local/sbin")):
    found = shutil.which(name)
    if found:
        return found
    for d in dirs:
        if os.access(os.path.join(d, name), os.X_OK):
            return os.path.join(d, name)
    raise LabError(f"{name} not found: run scripts/setup")


def pg_bin(name):
    base = "/usr/lib/postgresql"
    if os.path.isdir(base):
        for v in sorted(os.listdir(base), reverse=True):
            p = os.path.join(base, v, "bin", name)
            if os.access(p, os.X_OK):
                return p
    raise LabError(f"PostgreSQL {name} not found: run scripts/setup (package postgresql)")


def http_get(url, timeout=2.0, headers=None):
    req = urllib.request.Request(url, headers=headers or {})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return r.status, r.read()


def wait_for(what, fn, timeout, interval=0.1):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            v = fn()
            if v:
                return v
        except Exception as e:  # noqa: BLE001 - the condition is retried until the deadline
            last = e
        time.sleep(interval)
    raise LabError(f"{what} not ready within {timeout:.0f} s" + (f" (last error: {last})" if last else ""))


def pid_alive(pid):
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


def stop_pid(pid, grace=5.0):
    if not pid or not pid_alive(pid):
        return
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if not pid_alive(pid):
            return
        time.sleep(0.05)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


class Lab:
    """One real-peer lab, described by <state>/lab.json."""

    def __init__(self, name, state_dir=None):
        if not name or len(name) > 8 or not all(c.isalnum() and (c.islower() or c.isdigit()) for c in name):
            raise LabError(f"lab name {name!r}: use 1-8 lower-case letters or digits")
        self.name = name
        self.dir = os.path.abspath(state_dir or f"/tmp/headshift-real-{name}")
        self.index = sum(name.encode()) % 40  # second octet 10.(150+index): distinct labs rarely collide
        self.info = {}

    # ---- naming ------------------------------------------------------------------------------------
    @property
    def prefix(self):
        return f"hr{self.name}"

    def ns(self, what):
        return f"{self.prefix}-{what}"

    def octet(self):
        return 150 + self.index

    def edge_ip(self):
        return f"10.{self.octet()}.0.1"

    def derp_ip(self):
        return f"10.{self.octet()}.0.2"

    def node_ip(self, i):
        return f"10.{self.octet()}.0.{10 + i}"

    def path(self, *parts):
        return os.path.join(self.dir, *parts)

    def save(self):
        tmp = self.path("lab.json.tmp")
        with open(tmp, "w") as f:
            json.dump(self.info, f, indent=1)
        os.replace(tmp, self.path("lab.json"))

    def load(self):
        with open(self.path("lab.json")) as f:
            self.info = json.load(f)
        return self.info

    # ---- processes ---------------------------------------------------------------------------------
    def spawn(self, key, argv, netns=None, log_name=None, env=None, user=None):
        logf = open(self.path("logs", (log_name or key) + ".log"), "ab")
        full = (["ip", "netns", "exec", netns] if netns else []) + argv
        if user:
            full = ["runuser", "-u", user, "--"] + full
        e = dict(os.environ)
        e.update(env or {})
        p = subprocess.Popen(full, stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                             start_new_session=True, env=e, cwd=self.dir)
        logf.close()
        self.info.setdefault("pids", {})[key] = p.pid
        self.save()
        return p.pid

    # ---- up ----------------------------------------------------------------------------------------
    def up(self, tenants, devices, clusters, edge, noise_mismatch=False):
        if os.geteuid() != 0:
            raise LabError("the real-peer lab needs root (network namespaces, veths)")
        self.down(quiet=True)
        os.makedirs(self.dir, exist_ok=True)
        for d in ("logs", "secrets", "pg", "traefik/dynamic", "devices"):
            os.makedirs(self.path(d), exist_ok=True)
        os.chmod(self.path("secrets"), 0o700)
        names = [f"hs{chr(ord('a') + i)}" for i in range(tenants)]
        self.info = {"name": self.name, "dir": self.dir, "edge": edge, "clusters": clusters,
                     "edge_ip": self.edge_ip(), "tenants": {}, "nodes": {}, "namespaces": [], "links": [],
                     "pids": {}, "started": time.time()}
        self.save()
        t0 = time.monotonic()
        self._network(names)
        self._postgres(clusters)
        self._tls(names)
        self._derper()
        for i, c in enumerate(clusters):
            key = self.path("secrets", "noise_private.key")
            if noise_mismatch and i > 0:
                key = self.path("secrets", f"noise_private_{c}.key")
            self._headscale(i, c, key)
        self._edge(names, clusters)
        for i, t in enumerate(names):
            self._tenant(i, t, clusters[i % len(clusters)], devices)
        self._write_headshift_config(names, clusters)
        self._route_tenants(names)
        self._start_devices(names)
        self.wait_running()
        self.info["up_s"] = round(time.monotonic() - t0, 1)
        self.save()
        return self.info

    def _network(self, tenants):
        o = self.octet()
        dc = self.ns("dc")
        run(["ip", "netns", "add", dc])
        self.info["namespaces"].append(dc)
        self.save()
        run(["ip", "-n", dc, "link", "set", "lo", "up"])
        for addr in [self.edge_ip(), self.derp_ip()] + [self.node_ip(i) for i in range(len(self.info["clusters"]))]:
            run(["ip", "-n", dc, "addr", "add", f"{addr}/32", "dev", "lo"])
        r, d = f"{self.prefix}r", f"{self.prefix}d"
        run(["ip", "link", "add", r, "type", "veth", "peer", "name", d])
        self.info["links"].append(r)
        self.save()
        run(["ip", "link", "set", d, "netns", dc])
        run(["ip", "addr", "add", f"10.{o}.255.1/30", "dev", r])
        run(["ip", "link", "set", r, "up"])
        run(["ip", "-n", dc, "addr", "add", f"10.{o}.255.2/30", "dev", d])
        run(["ip", "-n", dc, "link", "set", d, "up"])
        run(["ip", "route", "replace", f"10.{o}.0.0/24", "via", f"10.{o}.255.2"])
        for i, t in enumerate(tenants):
            tns = self.ns(f"t-{t}")
            run(["ip", "netns", "add", tns])
            self.info["namespaces"].append(tns)
            self.save()
            run(["ip", "-n", tns, "link", "set", "lo", "up"])
            a, b = f"{self.prefix}t{i}", f"{self.prefix}u{i}"
            run(["ip", "link", "add", a, "netns", dc, "type", "veth", "peer", "name", b, "netns", tns])
            run(["ip", "-n", dc, "addr", "add", f"198.18.{i}.1/24", "dev", a])
            run(["ip", "-n", dc, "link", "set", a, "up"])
            run(["ip", "-n", tns, "addr", "add", f"198.18.{i}.2/24", "dev", b])
            run(["ip", "-n", tns, "link", "set", b, "up"])
            run(["ip", "-n", tns, "route", "add", "default", "via", f"198.18.{i}.1"])
            etc = f"/etc/netns/{tns}"
            os.makedirs(etc, exist_ok=True)
            with open(os.path.join(etc, "hosts"), "w") as f:
                f.write("127.0.0.1 localhost\n")
                f.write(f"{self.edge_ip()} " + " ".join(f"{x}.demo.com" for x in tenants) + "\n")
                f.write(f"{self.derp_ip()} derp.demo.com\n")
            with open(os.path.join(etc, "resolv.conf"), "w") as f:
                f.write("# real-peer lab: names come from /etc/hosts\n")

    def _postgres(self, clusters):
        pg = self.path("pg")
        shutil.chown(pg, "postgres", "postgres")
        os.chmod(self.dir, 0o755)
        run(["runuser", "-u", "postgres", "--", pg_bin("initdb"), "-D", self.path("pg", "data"), "-A", "trust",
             "-U", "postgres", "--no-sync", "-E", "UTF8"], timeout=120)
        with open(self.path("pg", "data", "postgresql.conf"), "a") as f:
            f.write(f"listen_addresses = ''\nunix_socket_directories = '{pg}'\nfsync = off\n"
                    "synchronous_commit = off\nfull_page_writes = off\nmax_connections = 200\n")
        self.spawn("postgres", [pg_bin("postgres"), "-D", self.path("pg", "data")], user="postgres")
        wait_for("PostgreSQL", lambda: run([pg_bin("pg_isready"), "-h", pg, "-q"], check=False).returncode == 0, 30)
        for c in clusters:
            self.psql("postgres", f"CREATE DATABASE hs{c}")
            dsn = f"host={pg} dbname=hs{c} user=postgres"
            self._secret(f"dsn_{c}", dsn)
        self.info["pg"] = pg

    def psql(self, db, sql):
        p = run([pg_bin("psql"), "-h", self.info.get("pg", self.path("pg")), "-U", "postgres", "-d", db, "-v",
                 "ON_ERROR_STOP=1", "-qAt", "-c", sql])
        return p.stdout.strip()

    def _secret(self, name, value):
        path = self.path("secrets", name)
        fd = os.open(path + ".tmp", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(value)
        os.replace(path + ".tmp", path)
        return path

    def headscale_config_path(self, c):
        return self.path(f"hs{c}", "config.yaml")

    def _headscale(self, i, c, noise_key):
        d = self.path(f"hs{c}")
        os.makedirs(d, exist_ok=True)
        ip = self.node_ip(i)
        cfg = {
            "server_url": f"http://{ip}:8080",
            "listen_addr": f"{ip}:8080",
            "metrics_listen_addr": f"{ip}:9090",
            "grpc_listen_addr": f"{ip}:50443",
            "grpc_allow_insecure": False,
            "noise": {"private_key_path": noise_key},
            # Disjoint address ranges and id sequences per node, so a tenant's devices keep their tailnet
            # IPs and node ids (tailscale's Self.ID) when they move: how a multi-node deployment is run.
            "prefixes": {"v4": f"100.64.{i}.0/24", "v6": f"fd7a:115c:a1e0:{i}::/64", "allocation": "sequential"},
            # The lab's own DERP relay and STUN server (real derper): without one, tailscaled's netcheck finds
            # "UDP blocked" and rebinds its sockets every few seconds, dropping WireGuard packets.
            "derp": {"server": {"enabled": False}, "urls": [], "paths": [self._derp_map()],
                     "auto_update_enabled": False},
            "disable_check_updates": True,
            "node": {"expiry": 0},
            "database": {"type": "postgres",
                         "postgres": {"host": self.path("pg"), "port": 5432, "name": f"hs{c}", "user": "postgres",
                                      "pass": "", "max_open_conns": 10, "max_idle_conns": 5}},
            "log": {"level": "info", "format": "text"},
            "policy": {"mode": "file", "path": ""},
            "dns": {"magic_dns": False, "override_local_dns": False, "nameservers": {"global": []}},
            "unix_socket": os.path.join(d, "headscale.sock"),
            "unix_socket_permission": "0770",
            "logtail": {"enabled": False},
            "taildrop": {"enabled": False},
        }
        with open(self.headscale_config_path(c), "w") as f:
            yaml.safe_dump(cfg, f, sort_keys=False)
        self.info["nodes"][c] = {"ip": ip, "control_url": f"http://{ip}:8080", "config": self.headscale_config_path(c),
                                 "noise_key": noise_key, "db": f"hs{c}"}
        self.save()
        self.start_node(c)
        # Ids of rows created on this node start at <index+1> * 1,000,000 (see the prefixes above).
        base = (i + 1) * 1000000 + 1
        for seq in ("users_id_seq", "nodes_id_seq", "pre_auth_keys_id_seq"):
            self.psql(f"hs{c}", f"ALTER SEQUENCE {seq} RESTART WITH {base}")
        key = self.headscale(c, ["apikeys", "create", "--expiration", "30d"]).strip().splitlines()[-1].strip()
        self.info["nodes"][c]["api_key_file"] = self._secret(f"apikey_{c}", key)
        self.save()

    def _derp_map(self):
        path = self.path("derp.yaml")
        if not os.path.exists(path):
            region = {"regionid": 900, "regioncode": "lab", "regionname": "lab relay",
                      "nodes": [{"name": "900a", "regionid": 900, "hostname": "derp.demo.com",
                                 "ipv4": self.derp_ip(), "ipv6": "none", "stunport": 3478, "derpport": 8443}]}
            with open(path, "w") as f:
                yaml.safe_dump({"regions": {900: region}}, f, sort_keys=False)
        return path

    def headscale(self, c, args, check=True):
        return run([peer_bin("headscale"), "-c", self.headscale_config_path(c)] + args, check=check).stdout

    def start_node(self, c):
        n = self.info["nodes"][c]
        self.spawn(f"headscale-{c}", [peer_bin("headscale"), "-c", n["config"], "serve"], netns=self.ns("dc"),
                   log_name=f"headscale-{c}")
        wait_for(f"headscale node {c}", lambda: http_get(n["control_url"] + "/health")[0] == 200, 30)

    def restart_node(self, c):
        """Stops and starts node c (headscale >= 0.27 loads its nodes only at start). Every control connection
        it held drops; its devices reconnect with their keys."""
        self.load()
        t0 = time.monotonic()
        stop_pid(self.info["pids"].get(f"headscale-{c}"), grace=10)
        self.start_node(c)
        return time.monotonic() - t0

    def stop_node(self, c):
        self.load()
        stop_pid(self.info["pids"].get(f"headscale-{c}"), grace=10)

    def _tls(self, tenants):
        """A lab CA and a *.demo.com certificate: the edge serves :443 too. A tailscale client whose previous
        control dial was less than 2 minutes ago dials :443 (TLS) first after a reset
        (tailscale.com control/controlhttp/client.go forceNoise443, health.LastNoiseDialWasRecent), so an
        edge without :443 strands freshly connected devices. The devices trust the CA via SSL_CERT_FILE."""
        d = self.path("tls")
        os.makedirs(d, exist_ok=True)
        ossl = sys_bin("openssl")
        run([ossl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout",
             f"{d}/ca.key", "-out", f"{d}/ca.pem", "-days", "3", "-subj", "/CN=headshift real-peer lab CA"])
        run([ossl, "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout",
             f"{d}/edge.key", "-out", f"{d}/edge.csr", "-subj", "/CN=demo.com"])
        with open(f"{d}/ext.cnf", "w") as f:
            f.write("subjectAltName=DNS:*.demo.com,DNS:demo.com\nextendedKeyUsage=serverAuth\n")
        run([ossl, "x509", "-req", "-in", f"{d}/edge.csr", "-CA", f"{d}/ca.pem", "-CAkey", f"{d}/ca.key",
             "-CAcreateserial", "-out", f"{d}/edge.pem", "-days", "3", "-extfile", f"{d}/ext.cnf"])
        with open(f"{d}/edge.bundle.pem", "w") as out:
            for part in ("edge.pem", "edge.key"):
                with open(f"{d}/{part}") as f:
                    out.write(f.read())
        self.info["tls"] = {"ca": f"{d}/ca.pem", "cert": f"{d}/edge.pem", "key": f"{d}/edge.key",
                            "bundle": f"{d}/edge.bundle.pem"}
        self.save()

    def _derper(self):
        d = self.path("derper")
        os.makedirs(d, exist_ok=True)
        shutil.copy(self.info["tls"]["cert"], os.path.join(d, "derp.demo.com.crt"))
        shutil.copy(self.info["tls"]["key"], os.path.join(d, "derp.demo.com.key"))
        self.spawn("derper", [peer_bin("derper"), "-a", f"{self.derp_ip()}:8443", "-http-port", "-1",
                              "-certmode", "manual", "-certdir", d, "-hostname", "derp.demo.com", "-stun",
                              "-stun-port", "3478"], netns=self.ns("dc"), log_name="derper")
        wait_for("derper", lambda: run(["ip", "netns", "exec", self.ns("dc"), "ss", "-Hltn",
                                        f"src {self.derp_ip()}:8443"], check=False).stdout.strip(), 15)

    def _edge(self, tenants, clusters):
        dc = self.ns("dc")
        if self.info["edge"] == "traefik":
            static = {
                # websecure terminates TLS for every router attached to it (http.tls), so one router per
                # tenant on [web, websecure] serves both ports.
                "entryPoints": {"web": {"address": f"{self.edge_ip()}:80"},
                                "websecure": {"address": f"{self.edge_ip()}:443", "http": {"tls": {}}},
                                "traefik": {"address": f"{self.edge_ip()}:8081"}},
                "api": {"insecure": True, "dashboard": False},
                "providers": {"file": {"directory": self.path("traefik", "dynamic"), "watch": True},
                              "providersThrottleDuration": "200ms"},
                "log": {"level": "INFO"},
                "ping": {"entryPoint": "traefik"},
            }
            with open(self.path("traefik", "traefik.yml"), "w") as f:
                yaml.safe_dump(static, f, sort_keys=False)
            # The operator's own dynamic file (headshift owns only headshift-*.yml): the edge certificate.
            tls = {"tls": {"stores": {"default": {"defaultCertificate": {
                "certFile": self.info["tls"]["cert"], "keyFile": self.info["tls"]["key"]}}}}}
            with open(self.path("traefik", "dynamic", "lab-tls.yml"), "w") as f:
                yaml.safe_dump(tls, f, sort_keys=False)
            self.spawn("traefik", [peer_bin("traefik"), f"--configFile={self.path('traefik', 'traefik.yml')}"],
                       netns=dc, log_name="traefik")
            wait_for("Traefik API", lambda: http_get(f"http://{self.edge_ip()}:8081/api/version")[0] == 200, 30)
        else:
            sock = self.path("haproxy.sock")
            mapf = self.path("tenants.map")
            with open(mapf, "w") as f:
                for i, t in enumerate(tenants):
                    f.write(f"{t}.demo.com headscale-cluster{clusters[i % len(clusters)]}\n")
            lines = ["global", f"  stats socket {sock} level admin", "  maxconn 8000", "defaults", "  mode http",
                     "  timeout connect 5s", "  timeout client 10m", "  timeout server 10m", "  timeout tunnel 1h",
                     "frontend web", f"  bind {self.edge_ip()}:80",
                     f"  bind {self.edge_ip()}:443 ssl crt {self.info['tls']['bundle']}",
                     f"  use_backend %[req.hdr(host),lower,word(1,:),map({mapf})]"]
            for i, c in enumerate(clusters):
                lines += [f"backend headscale-cluster{c}", f"  server n{c} {self.node_ip(i)}:8080 check inter 1s"]
            with open(self.path("haproxy.cfg"), "w") as f:
                f.write("\n".join(lines) + "\n")
            self.spawn("haproxy", [sys_bin("haproxy"), "-W", "-db", "-f", self.path("haproxy.cfg")], netns=dc,
                       log_name="haproxy")
            wait_for("HAProxy runtime socket", lambda: os.path.exists(sock), 15)
            self.info["haproxy"] = {"socket": sock, "map": mapf, "cfg": self.path("haproxy.cfg")}

    def _tenant(self, i, t, home, devices):
        c = home
        out = self.headscale(c, ["users", "create", t, "-o", "json"])
        uid = json.loads(out)["id"]
        out = self.headscale(c, ["preauthkeys", "create", "-u", str(uid), "--reusable", "-e", "24h", "-o", "json"])
        key = json.loads(out)["key"]
        self.info["tenants"][t] = {"home": c, "ns": self.ns(f"t-{t}"), "address": f"198.18.{i}.2",
                                   "host": f"{t}.demo.com", "authkey_file": self._secret(f"authkey_{t}", key),
                                   "devices": [f"{t}-{k + 1}" for k in range(devices)]}
        self.save()

    def _route_tenants(self, tenants):
        if self.info["edge"] != "traefik":
            return
        for t in tenants:
            home = self.info["tenants"][t]["home"]
            p = run([self.headshift_bin(), "--config", self.headshift_config_for_routes(), "route", "set", t, home,
                     "--create"], check=False)
            if p.returncode != 0:
                raise LabError(f"headshift route set {t} {home} --create failed: {p.stderr.strip()[-500:]}")

    def headshift_config_for_routes(self):
        """The lab's config; while this headshift build lacks `database.cluster_column`, a copy without it
        (routes need only the proxy section)."""
        p = run([self.headshift_bin(), "--config", self.path("headshift.yaml"), "route", "show"], check=False)
        if "cluster_column" not in (p.stderr + p.stdout):
            return self.path("headshift.yaml")
        with open(self.path("headshift.yaml")) as f:
            cfg = yaml.safe_load(f)
        cfg["database"].pop("cluster_column", None)
        with open(self.path("headshift-routes.yaml"), "w") as f:
            yaml.safe_dump(cfg, f, sort_keys=False)
        return self.path("headshift-routes.yaml")

    def headshift_bin(self):
        b = os.environ.get("HEADSHIFT_BIN", os.path.join(REPO, "build", "cli", "headshift"))
        if not os.access(b, os.X_OK):
            raise LabError(f"headshift not built at {b} (cmake --build build, or set HEADSHIFT_BIN)")
        return b

    def _start_devices(self, tenants):
        base_port = 41000
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
            with open(tinfo["authkey_file"]) as f:
                key = f.read().strip()
            procs = []
            for dev in tinfo["devices"]:
                sock = self.path("devices", dev, "tailscaled.sock")
                wait_for(f"tailscaled {dev} socket", lambda: os.path.exists(sock), 30)
                # --authkey=file:PATH keeps the key off the command line.
                procs.append((dev, subprocess.Popen(
                    ["ip", "netns", "exec", tinfo["ns"], peer_bin("tailscale"), f"--socket={sock}", "up",
                     f"--login-server=http://{tinfo['host']}", f"--auth-key=file:{tinfo['authkey_file']}",
                     f"--hostname={dev}", "--accept-dns=false", "--timeout=60s"],
                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)))
            for dev, p in procs:
                out, _ = p.communicate(timeout=90)
                if p.returncode != 0:
                    raise LabError(f"tailscale up on {dev} failed (exit {p.returncode}): {out.strip()[-500:]}")
            del key

    # ---- device views ------------------------------------------------------------------------------
    def tailscale_bin(self):
        return peer_bin("tailscale")

    def device_status(self, dev):
        t = dev.rsplit("-", 1)[0]
        sock = self.path("devices", dev, "tailscaled.sock")
        p = run(["ip", "netns", "exec", self.info["tenants"][t]["ns"], peer_bin("tailscale"), f"--socket={sock}",
                 "status", "--json", "--peers=false"], check=False, timeout=20)
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

    def node_answers(self, c):
        try:
            return http_get(self.info["nodes"][c]["control_url"] + "/health", timeout=2)[0] == 200
        except OSError:
            return False

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

    def node_api(self, c, path):
        n = self.info["nodes"][c]
        with open(n["api_key_file"]) as f:
            key = f.read().strip()
        code, body = http_get(n["control_url"] + path, timeout=5, headers={"Authorization": f"Bearer {key}"})
        return json.loads(body)

    # ---- headshift config --------------------------------------------------------------------------
    def _write_headshift_config(self, tenants, clusters):
        me = [sys.executable, os.path.abspath(__file__)]
        cfg = {
            "database": {"layout": "split", "cluster_column": "none"},  # stock headscale: the cluster is the DSN
            "clusters": [],
            "sessions": {"hosts": [{"name": "edge", "netns": self.ns("dc"), "ports": [80, 443]}]},
            "tenants": {t: {"extra_cidrs": [f"{self.info['tenants'][t]['address']}/32"]} for t in tenants},
            "timeouts": {"db_connect_ms": 3000, "http_ms": 3000, "target_ready_ms": 30000, "route_live_ms": 10000,
                         "reconnect_ms": 60000, "reload_command_ms": 60000},
        }
        for i, c in enumerate(clusters):
            n = self.info["nodes"][c]
            cfg["clusters"].append({
                "id": c, "control_url": n["control_url"], "api_key_file": n["api_key_file"],
                "backend": f"headscale-cluster{c}", "dsn_file": self.path("secrets", f"dsn_{c}"),
                "cached_nodes": True,
                "reload_command": me + ["--name", self.name, "--state-dir", self.dir, "restart-node", c]})
        if self.info["edge"] == "traefik":
            cfg["proxy"] = {"kind": "traefik-file", "traefik": {
                "directory": self.path("traefik", "dynamic"), "api_url": f"http://{self.edge_ip()}:8081",
                "router_template": "{tenant}", "host_template": "{tenant}.demo.com",
                "entry_points": ["web", "websecure"],
                "schema_version": 3, "throttle_ms": 200}}
        else:
            h = self.info["haproxy"]
            cfg["proxy"] = {"kind": "haproxy", "haproxy": {"runtime_socket": h["socket"], "map_file": h["map"],
                                                           "host_template": "{tenant}.demo.com"}}
        text = "# headshift config for real-peer lab " + self.name + " (written by sandbox/real/reallab.py)\n"
        text += yaml.safe_dump(cfg, sort_keys=False)
        with open(self.path("headshift.yaml"), "w") as f:
            f.write(text)
        self.info["config"] = self.path("headshift.yaml")
        self.save()

    # ---- down --------------------------------------------------------------------------------------
    def down(self, quiet=False):
        info = {}
        if os.path.exists(self.path("lab.json")):
            try:
                info = self.load()
            except (OSError, ValueError):
                info = {}
        pids = list((info.get("pids") or {}).values())
        # Devices and nodes first (they hold connections), PostgreSQL last.
        pg = (info.get("pids") or {}).get("postgres")
        for pid in pids:
            if pid != pg:
                try:
                    os.kill(pid, signal.SIGTERM)
                except (ProcessLookupError, PermissionError):
                    pass
        for pid in pids:
            if pid != pg:
                stop_pid(pid, grace=5)
        # Leftovers: anything still running in one of our namespaces.
        nss = set(info.get("namespaces") or [])
        listed = run(["ip", "netns", "list"], check=False).stdout.split()
        nss |= {n for n in listed if n.startswith(self.prefix + "-")}
        for n in nss:
            for pid in run(["ip", "netns", "pids", n], check=False).stdout.split():
                stop_pid(int(pid), grace=2)
        stop_pid(pg, grace=10)
        for n in nss:
            run(["ip", "netns", "del", n], check=False)
            shutil.rmtree(f"/etc/netns/{n}", ignore_errors=True)
        for link in set(info.get("links") or []) | {f"{self.prefix}r"}:
            run(["ip", "link", "del", link], check=False)
        if os.path.isdir(self.dir):
            shutil.rmtree(self.dir, ignore_errors=True)
        if not quiet:
            log(f"lab {self.name} is down")


def main():
    ap = argparse.ArgumentParser(prog="reallab", description="real-peer lab: headscale, Traefik/HAProxy, tailscaled")
    ap.add_argument("--name", default="real")
    ap.add_argument("--state-dir")
    sub = ap.add_subparsers(dest="cmd", required=True)
    u = sub.add_parser("up")
    u.add_argument("--tenants", type=int, default=3)
    u.add_argument("--devices", type=int, default=10)
    u.add_argument("--clusters", default="3,4")
    u.add_argument("--edge", choices=["traefik", "haproxy"], default="traefik")
    u.add_argument("--noise-mismatch", action="store_true", help="clusters after the first get another Noise key")
    sub.add_parser("down")
    s = sub.add_parser("status")
    s.add_argument("--json", action="store_true")
    s.add_argument("--tenant")
    r = sub.add_parser("restart-node")
    r.add_argument("cluster")
    st = sub.add_parser("stop-node")
    st.add_argument("cluster")
    sn = sub.add_parser("start-node")
    sn.add_argument("cluster")
    a = ap.parse_args()
    lab = Lab(a.name, a.state_dir)
    try:
        if a.cmd == "up":
            clusters = [c.strip() for c in a.clusters.split(",") if c.strip()]
            if len(clusters) < 2 or len(set(clusters)) != len(clusters):
                raise LabError("--clusters: give two or more distinct cluster ids, e.g. 3,4")
            if not 1 <= a.tenants <= 26 or not 1 <= a.devices <= 200:
                raise LabError("--tenants 1..26, --devices 1..200")
            try:
                info = lab.up(a.tenants, a.devices, clusters, a.edge, a.noise_mismatch)
            except BaseException:
                log("up failed: taking down what was made (logs kept in /tmp/headshift-real-logs-" + a.name + ")")
                if os.path.isdir(lab.path("logs")):
                    shutil.rmtree(f"/tmp/headshift-real-logs-{a.name}", ignore_errors=True)
                    shutil.copytree(lab.path("logs"), f"/tmp/headshift-real-logs-{a.name}")
                lab.down(quiet=True)
                raise
            print(json.dumps({"name": lab.name, "dir": lab.dir, "config": info["config"], "edge": info["edge"],
                              "tenants": {t: {"home": v["home"], "devices": len(v["devices"])}
                                          for t, v in info["tenants"].items()}, "up_s": info["up_s"]}))
        elif a.cmd == "down":
            lab.down()
        elif a.cmd == "status":
            lab.load()
            devs = [lab.device_status(d) for d in lab.devices(a.tenant)]
            if a.json:
                print(json.dumps({"devices": devs}))
            else:
                for d in devs:
                    print(f"{d['device']}: {d.get('backend_state')} id={d.get('id')} ips={','.join(d.get('ips', []))}")
        elif a.cmd == "restart-node":
            s = lab.restart_node(a.cluster)
            log(f"node {a.cluster} restarted in {s:.2f} s")
        elif a.cmd == "stop-node":
            lab.stop_node(a.cluster)
        elif a.cmd == "start-node":
            lab.load()
            lab.start_node(a.cluster)
    except LabError as e:
        print(f"reallab: error: {e}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
