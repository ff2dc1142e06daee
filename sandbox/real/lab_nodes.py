"""The real-peer lab's control side: PostgreSQL (one database per headscale node), the headscale nodes (config,
start, stop, restart, API), and the lab's DERP relay. A mixin of reallab.Lab (needs self.info, self.path,
self.spawn, self.ns, self.node_ip, self.derp_ip from it)."""
import json
import os
import shutil
import time

import yaml

from labkit import LabError, cgroups, http_get, pg_bin, run, wait_for, write_secret

PEERS_DIR = os.environ.get("HEADSHIFT_PEERS_DIR", "/var/cache/headshift-peers")


def peer_bin(name):
    if name == "traefik":
        path = os.path.join(PEERS_DIR, "traefik", "traefik")
    else:
        path = os.path.join(PEERS_DIR, "bin", name)
    if not os.access(path, os.X_OK):
        raise LabError(f"{name} not found at {path}: run scripts/setup (it builds/installs the real peers)")
    return path


class NodesMixin:
    def _postgres(self, clusters):
        pg = self.path("pg")
        shutil.chown(pg, "postgres", "postgres")
        os.chmod(self.dir, 0o755)
        run(["runuser", "-u", "postgres", "--", pg_bin("initdb"), "-D", self.path("pg", "data"), "-A", "trust",
             "-U", "postgres", "--no-sync", "-E", "UTF8"], timeout=120)
        with open(self.path("pg", "data", "postgresql.conf"), "a") as f:
            f.write(f"listen_addresses = ''\nunix_socket_directories = '{pg}'\nfsync = off\n"
                    "synchronous_commit = off\nfull_page_writes = off\nmax_connections = 200\n")
        # Phase 1: stopped last, after the nodes that hold connections to it.
        self.spawn("postgres", [pg_bin("postgres"), "-D", self.path("pg", "data")], user="postgres", phase=1)
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
        return write_secret(self.path("secrets", name), value)

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
            "prefixes": {"v4": f"100.{64 + i}.0.0/16", "v6": f"fd7a:115c:a1e0:{i}::/64", "allocation": "sequential"},
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
            "policy": self.headscale_policy_config(c),  # lab_policy.py
            "dns": {"magic_dns": False, "override_local_dns": False, "nameservers": {"global": []}},
            "unix_socket": os.path.join(d, "headscale.sock"),
            "unix_socket_permission": "0770",
            "logtail": {"enabled": False},
            "taildrop": {"enabled": False},
        }
        with open(self.headscale_config_path(c), "w") as f:
            yaml.safe_dump(cfg, f, sort_keys=False)
        self.info["nodes"][c] = {"ip": ip, "control_url": f"http://{ip}:8080", "config": self.headscale_config_path(c),
                                 "noise_key": noise_key, "db": f"hs{c}", "starts_file": self.path(f"hs{c}", "starts.jsonl")}
        cpus = self.info.get("cpu_limits", {}).get(c)
        if cpus:
            # One cgroup per node, made once: every start of this node's headscale (restart-node, the
            # clusters' reload_command) goes back into it; down removes it (labkit ledger).
            self.info["nodes"][c]["cpu_limit"] = {"cpus": cpus, "cgroup": self.add_cpu_limit(f"hs{c}", cpus)}
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
        """Starts node c's headscale (in its CPU-limit cgroup if it has one) and waits until it answers; appends
        the start to <state>/hs<c>/starts.jsonl ({"pid", "t": spawned, "ready": answering}, seconds since the
        epoch): every start, also those of restart-node run by headshift (tests count restarts from it)."""
        n = self.info["nodes"][c]
        cgroup = (n.get("cpu_limit") or {}).get("cgroup")
        t_spawn = time.time()
        # headscale's debug listener lets private sources in, but each endpoint is also tsweb.Protected
        # (loopback and tailnet addresses only; tailscale.com/tsweb AllowDebugAccess): headshift reads it from
        # the root namespace's end of the lab veth (10.<B>.255.1), so that /30 is trusted.
        pid = self.spawn(f"headscale-{c}", [peer_bin("headscale"), "-c", n["config"], "serve"], netns=self.ns("dc"),
                         log_name=f"headscale-{c}", env={"TS_DEBUG_TRUSTED_CIDRS": f"10.{self.octet()}.255.0/30"},
                         cgroup=cgroup)
        if cgroup:  # the spawned shell puts itself in, then execs headscale
            wait_for(f"headscale of node {c} (pid {pid}) in its CPU-limit cgroup {cgroup}",
                     lambda: cgroups.contains(cgroup, pid), 10)
        wait_for(f"headscale node {c}", lambda: http_get(n["control_url"] + "/health")[0] == 200, 60 if cgroup else 30)
        with open(n.get("starts_file") or self.path(f"hs{c}", "starts.jsonl"), "a") as f:
            f.write(json.dumps({"pid": pid, "t": round(t_spawn, 3), "ready": round(time.time(), 3)}) + "\n")

    def node_starts(self, c, since=None):
        """Every start of node c's headscale ({"pid", "t", "ready"}), oldest first; since: only those spawned at
        or after it (seconds since the epoch)."""
        n = self.info["nodes"][c]
        try:
            with open(n.get("starts_file") or self.path(f"hs{c}", "starts.jsonl")) as f:
                starts = [json.loads(line) for line in f if line.strip()]
        except FileNotFoundError:
            return []
        return [s for s in starts if since is None or s["t"] >= since]

    def restart_node(self, c):
        """Stops and starts node c (headscale >= 0.27 loads its nodes only at start). Every control connection
        it held drops; its devices reconnect with their keys."""
        self.load()
        t0 = time.monotonic()
        self.stop(f"headscale-{c}", grace=10)
        self.start_node(c)
        return time.monotonic() - t0

    def stop_node(self, c):
        self.load()
        self.stop(f"headscale-{c}", grace=10)

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


    def node_answers(self, c):
        try:
            return http_get(self.info["nodes"][c]["control_url"] + "/health", timeout=2)[0] == 200
        except OSError:
            return False


    def node_api(self, c, path):
        n = self.info["nodes"][c]
        with open(n["api_key_file"]) as f:
            key = f.read().strip()
        code, body = http_get(n["control_url"] + path, timeout=5, headers={"Authorization": f"Bearer {key}"})
        return json.loads(body)

