#!/usr/bin/python3
"""The fleet lab: one headscale deployment behind N proxy hosts, each a network namespace with its own sshd
and its own real HAProxy, driven by real Ansible (playbooks/ansible) over real SSH.

  root netns (the control host: headshift, PostgreSQL, Ansible)
     |-- veth --> sandbox-<name>-c<id>      headscale stand-in per cluster (`headshift sandbox up --no-fleet`)
     |-- veth --> hsfl-<name>-p<i>          proxy host i: sshd on 172.<B>.<i>.2:22, HAProxy :80 :443
                    |-- veth --> sandbox-<name>-c<id>   HAProxy's backends (one /30 per host and cluster)
                    `-- veth --> sandbox-<name>-clients the tenants' devices (hs-fleet stand-in clients)

Every device dials proxy host (its index mod N) + 1, as DNS round robin would place it, and keeps its control
stream there: a tenant's sessions are spread over every host, and only that host's kernel sees them.
The devices are the sandbox's stand-in clients (sandbox/fleet.h, labelled so: they record every disconnect
and which cluster served them); HAProxy, sshd, Ansible, PostgreSQL and the kernel are the real ones.

Addresses: 172.<B>.<i>.0/24 per host i (B: a free second octet in 16..31, picked at `up`).
  .1/.2 root<->host (ssh)  .5/.6 host<->clients  .9+4k/.10+4k host<->cluster k
Every namespace, root veth (hsfl-<name>p<i>), process and file carries the prefix hsfl-<name> and is recorded
by the lab toolkit (sandbox/labkit): `up` first sweeps what a dead lab of the same name left.
Files: <state> = /tmp/headshift-lab-hsfl-<name>: lab.json, inventory.yml, id_ed25519, p<i>/{sshd_config,
haproxy.cfg, tenants.map, haproxy.sock, headshift.yaml, bin/, state/}, fleet/ (client records), package/ (the
Debian package unpacked: the proxy hosts get its binary through the headshift_install role, as a release).
`down` removes every namespace, veth, process and file, also from leftovers alone, and prints each cleanup
error (exit 1).
Usage: fleetlab.py [--name fl] up [--hosts 3] [--tenants 3] [--devices 20] | down | status
"""
import argparse
import glob
import json
import os
import shutil
import sys
import time
import urllib.request

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "sandbox"))
import labkit  # noqa: E402
from labkit import LabError, comm as _comm, netns_pids, wait_exited, wait_for  # noqa: E402
BUILD = os.environ.get("HEADSHIFT_BUILD", os.path.join(REPO, "build"))
HS = os.environ.get("HEADSHIFT_BIN", os.path.join(BUILD, "cli", "headshift"))
FLEET_BIN = os.path.join(os.path.dirname(os.path.dirname(HS)), "sandbox", "hs-fleet")
# The Debian package the proxy hosts get headshift from; default: packaged from HS's build directory.
DEB = os.environ.get("HEADSHIFT_DEB", "")
PORTS = [80, 443]


def run(argv, check=True, timeout=None, **kw):
    """labkit.run without a default timeout (a migration on a loaded machine takes what it takes)."""
    return labkit.run(argv, check=check, timeout=timeout, **kw)


def ip(*args, check=True):
    return run(["ip"] + list(args), check=check)


class FleetLab(labkit.Lab):
    def __init__(self, name="fl", state_dir=None):
        if not name.isalnum() or len(name) > 6:
            raise ValueError("fleet lab name: at most 6 letters/digits (it names veths)")
        self.name = name
        super().__init__(f"hsfl-{name.lower()}", state_dir, tool="fleetlab")
        self.sandbox = f"hsfl{name}"  # the `headshift sandbox` lab underneath

    # ---- names ----
    def host_ns(self, i):
        return self.ns(f"p{i}")

    def root_link(self, i):
        return self.link(f"p{i}")

    def hs(self, *args, config=None, check=False, netns=None):
        argv = [HS, "--config", config or self.info["control_config"]] + list(args)
        if netns:
            argv = ["ip", "netns", "exec", netns] + argv
        return run(argv, check=check)

    # ---- up ----
    def up(self, hosts=3, tenants=3, devices=20, clusters=("3", "4"), sandbox_args=()):
        """sandbox_args: more `headshift sandbox up` options, e.g. --tenant NAME:CLUSTER:DEVICES (replaces
        `tenants`), --lookup cached, --reload-drops-sessions (stand-ins that restart on their reload)."""
        self.begin(replace=True, subdirs=())
        os.chmod(self.dir, 0o755)
        try:
            return self._up(hosts, tenants, devices, list(clusters), list(sandbox_args))
        except BaseException:
            try:
                self.down(quiet=True)
            except LabError as e:  # each error is printed; the failure of `up` is the one raised
                self.log(str(e))
            raise

    def _pick_octet(self):
        used = run(["ip", "-4", "-o", "addr"]).stdout
        for b in range(29, 15, -1):
            if f" 172.{b}." not in used:
                return b
        raise LabError("no free 172.16-31.x.0/16 range in the root network namespace")

    def _save(self):
        self.save()

    def _up(self, n_hosts, tenants, devices, clusters, sandbox_args):
        t0 = time.monotonic()
        sb_dir = self.path("sandbox")
        run([HS, "sandbox", "up", "--name", self.sandbox, "--state-dir", sb_dir, "--no-fleet", "--tenants", str(tenants),
             "--devices", str(devices), "--clusters", ",".join(clusters), "--json"] + sandbox_args, timeout=600)
        self.on_teardown([HS, "sandbox", "down", "--name", self.sandbox, "--state-dir", sb_dir])
        with open(os.path.join(sb_dir, "lab.json")) as f:
            sb = json.load(f)
        b = self._pick_octet()
        self.info = {"name": self.name, "state_dir": self.dir, "sandbox_dir": sb_dir, "octet": b, "hosts": {},
                     "netns": [], "root_links": [], "clusters": clusters}
        self._save()
        run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"headshift-fleet-{self.name}", "-f",
             self.path("id_ed25519")])
        shutil.copy(self.path("id_ed25519.pub"), self.path("authorized_keys"))
        os.makedirs("/run/sshd", exist_ok=True)  # sshd's privilege-separation directory
        with open(os.path.join(sb_dir, "headshift.yaml")) as f:
            control_cfg = yaml.safe_load(f)
        clients_ns = sb["netns"]["clients"]
        for i in range(1, n_hosts + 1):
            self.info["hosts"][f"p{i}"] = self._make_host(i, b, sb, control_cfg, clients_ns)
            self._save()
        # The control host's config: the sandbox's databases and clusters; the proxies are the fleet's.
        control_cfg["proxy"] = {"kind": "fleet"}
        control_cfg.pop("sessions", None)
        self.info["control_config"] = self.path("control.yaml")
        with open(self.info["control_config"], "w") as f:
            yaml.safe_dump(control_cfg, f, sort_keys=False)
        self.info["release_binary"] = self._package_binary()
        self._write_inventory()
        self._start_clients(sb, n_hosts, b)
        self.info["up_s"] = round(time.monotonic() - t0, 1)
        self._save()
        self.wait_connected()
        return self.info

    def _make_host(self, i, b, sb, control_cfg, clients_ns):
        ns, net = self.host_ns(i), f"172.{b}.{i}."
        hdir = self.path(f"p{i}")
        for d in ("", "bin", "state", "logs"):
            os.makedirs(os.path.join(hdir, d), exist_ok=True)
        self.add_netns(f"p{i}")
        self.info["netns"].append(ns)
        self._save()
        # root <-> host: ssh
        self.add_veth(self.root_link(i), "rt0", None, ns)
        self.info["root_links"].append(self.root_link(i))
        self._save()
        labkit.addr_up(self.root_link(i), net + "1/30")
        labkit.addr_up("rt0", net + "2/30", ns)
        # host <-> clients
        self.add_veth("cl0", f"p{i}", ns, clients_ns)
        labkit.addr_up("cl0", net + "5/30", ns)
        labkit.addr_up(f"p{i}", net + "6/30", clients_ns)
        ip("-n", ns, "route", "add", "198.18.0.0/15", "via", net + "6")
        # host <-> each cluster: HAProxy's upstreams
        upstreams = {}
        for k, c in enumerate(self.info["clusters"]):
            cns = sb["clusters"][c]["netns"]
            h_addr, c_addr = net + str(9 + 4 * k), net + str(10 + 4 * k)
            self.add_veth(f"c{k}", f"p{i}", ns, cns)
            labkit.addr_up(f"c{k}", h_addr + "/30", ns)
            labkit.addr_up(f"p{i}", c_addr + "/30", cns)
            port = sb["clusters"][c]["upstream_url"].rsplit(":", 1)[1]
            upstreams[c] = f"{c_addr}:{port}"
        host = {"name": f"p{i}", "netns": ns, "ssh": net + "2", "vip": net + "5", "dir": hdir,
                "headshift_bin": os.path.join(hdir, "bin", "headshift"), "state_dir": os.path.join(hdir, "state")}
        host.update(self._start_haproxy(i, ns, hdir, sb, upstreams))
        host["sshd_pid"] = self.start_sshd(f"p{i}", host)
        # This host's headshift config: the same clusters (reached from this host), its own HAProxy,
        # its own kernel's sessions (sessions.hosts without netns: where headshift runs).
        cfg = {k: v for k, v in control_cfg.items() if k not in ("proxy", "sessions")}
        cfg["clusters"] = []
        for c in control_cfg["clusters"]:
            c = dict(c)
            url = "http://" + upstreams[str(c["id"])]
            c["control_url"], c["upstream_url"] = url, url
            c.pop("reload_command", None)  # the control host reloads the nodes, never a proxy host
            c.pop("reload_drops_sessions", None)
            cfg["clusters"].append(c)
        cfg["proxy"] = {"kind": "haproxy", "haproxy": {"runtime_socket": host["haproxy_socket"],
                                                      "map_file": host["map_file"],
                                                      "host_template": "{tenant}.demo.com"}}
        cfg["sessions"] = {"hosts": [{"name": f"p{i}", "ports": PORTS}]}
        host["headshift_config"] = os.path.join(hdir, "headshift.yaml")
        with open(host["headshift_config"], "w") as f:
            yaml.safe_dump(cfg, f, sort_keys=False)
        return host

    def _start_haproxy(self, i, ns, hdir, sb, upstreams):
        map_file, sock = os.path.join(hdir, "tenants.map"), os.path.join(hdir, "haproxy.sock")
        shutil.copy(sb["edge"]["map_file"], map_file)
        cfg = "\n".join([
            f"# HAProxy of fleet lab {self.name} proxy host p{i}",
            "global", "    maxconn 4000", f"    stats socket {sock} mode 600 level admin", "    stats timeout 30s",
            "defaults", "    mode http", "    timeout connect 3s", "    timeout client 60s", "    timeout server 60s",
            "    timeout http-request 10s", "    timeout tunnel 24h", "    timeout client-fin 5s",
            "frontend edge", "    bind :80", "    bind :443",
            f"    use_backend %[req.hdr(host),lower,map({map_file})]"] +
            [f"backend headscale-cluster{c}\n    server cluster{c} {u}" for c, u in upstreams.items()]) + "\n"
        cfg_file = os.path.join(hdir, "haproxy.cfg")
        with open(cfg_file, "w") as f:
            f.write(cfg)
        run(["haproxy", "-c", "-q", "-f", cfg_file])
        pid = self._spawn_haproxy(f"p{i}", ns, hdir, cfg_file, sock)
        return {"haproxy_pid": pid, "haproxy_cfg": cfg_file, "haproxy_socket": sock, "map_file": map_file}

    def _spawn_haproxy(self, name, ns, hdir, cfg_file, sock):
        if os.path.exists(sock):
            os.unlink(sock)
        log = os.path.join(hdir, "logs", "haproxy.log")
        p = self.spawn(f"haproxy-{name}", ["haproxy", "-db", "-f", cfg_file], netns=ns, log_path=log)
        wait_for(f"haproxy on {name} (see {log})", lambda: os.path.exists(sock), 10, interval=0.02,
                 give_up=lambda: wait_exited(p))
        return p.pid

    def start_haproxy(self, name):
        """HAProxy of host `name` again, from its config; it reads the map file headshift keeps durable."""
        h = self.info["hosts"][name]
        h["haproxy_pid"] = self._spawn_haproxy(name, h["netns"], h["dir"], h["haproxy_cfg"], h["haproxy_socket"])
        self._save()

    def start_sshd(self, name, host=None):
        host = host or self.info["hosts"][name]
        hdir = host["dir"]
        key = os.path.join(hdir, "ssh_host_ed25519_key")
        if not os.path.exists(key):
            run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", key])
        cfg = os.path.join(hdir, "sshd_config")
        with open(cfg, "w") as f:
            f.write("\n".join([
                f"ListenAddress {host['ssh']}", "Port 22", f"HostKey {key}", f"PidFile {hdir}/sshd.pid",
                f"AuthorizedKeysFile {self.path('authorized_keys')}", "PermitRootLogin prohibit-password",
                "PasswordAuthentication no", "KbdInteractiveAuthentication no", "UsePAM no", "StrictModes no",
                "Subsystem sftp internal-sftp", ""]))
        log = os.path.join(hdir, "logs", "sshd.log")
        p = self.spawn(f"sshd-{name}", ["/usr/sbin/sshd", "-D", "-e", "-f", cfg], netns=host["netns"], log_path=log)
        wait_for(f"sshd on {name} (see {log})",
                 lambda: run(["ip", "netns", "exec", host["netns"], "ss", "-Htln", "sport = :22"]).stdout.strip(), 10,
                 interval=0.02, give_up=lambda: wait_exited(p))
        host["sshd_pid"] = p.pid
        if self.info.get("hosts", {}).get(name) is host:
            self._save()
        return p.pid

    def stop_sshd(self, name):
        """The host becomes unreachable: sshd and every session it serves (Ansible's ControlPersist masters
        included) are gone; HAProxy and the clients' sessions stay."""
        host = self.info["hosts"][name]
        labkit.stop_pids([p for p in netns_pids(host["netns"]) if _comm(p) == "sshd"])

    def stop_haproxy(self, name):
        host = self.info["hosts"][name]
        labkit.stop_pids([p for p in netns_pids(host["netns"]) if _comm(p) == "haproxy"])

    def _package_binary(self):
        """The binary of headshift's Debian package, unpacked (`dpkg-deb -x`) into <state>/package: what the
        proxy hosts run, installed by the headshift_install role as a release binary (an apt install of the
        .deb would change this machine's /usr/bin, which every lab shares). The package is HEADSHIFT_DEB, else
        `cpack -G DEB` of the build HS comes from: seconds, it packages what is built (stripped)."""
        deb = DEB
        if not deb:
            build = os.path.dirname(os.path.dirname(HS))
            out = os.path.join(build, "package")
            run(["cpack", "-G", "DEB", "-B", out], cwd=build)
            debs = sorted(glob.glob(os.path.join(out, "headshift_*.deb")), key=os.path.getmtime)
            if not debs:
                raise RuntimeError(f"cpack in {build} made no headshift_*.deb in {out}")
            deb = debs[-1]
        root = self.path("package")
        run(["dpkg-deb", "-x", deb, root])
        binary = os.path.join(root, "usr", "bin", "headshift")
        run([binary, "--version"])
        return binary

    def _write_inventory(self):
        proxies = {}
        for name, h in self.info["hosts"].items():
            proxies[name] = {"ansible_host": h["ssh"], "headshift_bin": h["headshift_bin"],
                             "headshift_config": h["headshift_config"], "headshift_state_dir": h["state_dir"],
                             "headshift_session_ports": PORTS}
        inv = {"all": {"children": {
            "headshift_control": {"hosts": {"control": {
                "ansible_connection": "local", "ansible_python_interpreter": sys.executable,
                "headshift_bin": HS, "headshift_config": self.info["control_config"]}}},
            "headshift_proxies": {
                "vars": {"ansible_user": "root", "ansible_python_interpreter": "/usr/bin/python3",
                         "ansible_ssh_private_key_file": self.path("id_ed25519"),
                         "ansible_ssh_common_args": "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null "
                                                    "-o ConnectTimeout=5",
                         "headshift_release_binary": self.info["release_binary"]},
                "hosts": proxies}}}}
        self.info["inventory"] = self.path("inventory.yml")
        with open(self.info["inventory"], "w") as f:
            f.write(f"# Ansible inventory of fleet lab {self.name} (tests/fleet/fleetlab.py)\n")
            yaml.safe_dump(inv, f, sort_keys=False)

    def _start_clients(self, sb, n_hosts, b):
        with open(os.path.join(self.info["sandbox_dir"], "fleet", "clients.json")) as f:
            spec = json.load(f)
        for idx, c in enumerate(spec["clients"]):
            port = c["connect"].rsplit(":", 1)[1]
            c["connect"] = f"172.{b}.{idx % n_hosts + 1}.5:{port}"
        fdir = self.path("fleet")
        os.makedirs(fdir, exist_ok=True)
        with open(os.path.join(fdir, "clients.json"), "w") as f:
            json.dump(spec, f)
        self.info["clients"] = len(spec["clients"])
        self.info["fleet_dir"] = fdir
        p = self.spawn("fleet", [FLEET_BIN, "--spec", os.path.join(fdir, "clients.json"), "--shard", "0", "--shards",
                                 "1", "--out-dir", fdir], netns=sb["netns"]["clients"],
                       log_path=self.path("fleet", "fleet.log"))
        self.info["fleet_pid"] = p.pid

    # ---- what the clients and the hosts say ----
    def clients(self):
        """Per-client records of the stand-in devices: tenant, name, state, cluster, disconnects, events."""
        with open(self.path("fleet", "shard-0.clients.json")) as f:
            return json.load(f)["clients"]

    def summary(self):
        with open(self.path("fleet", "shard-0.json")) as f:
            return json.load(f)

    def wait_connected(self, tenant=None, cluster=None, timeout=60, after_ms=0):
        """Every client (of tenant) connected (to cluster), per records written after after_ms (wall ms)."""
        def connected():
            with open(self.path("fleet", "shard-0.clients.json")) as f:
                doc = json.load(f)
            cs = [c for c in doc["clients"] if tenant is None or c["tenant"] == tenant]
            if (doc.get("written_ms", 0) >= after_ms and len(doc["clients"]) == self.info["clients"] and
                    all(c["state"] == "connected" and (cluster is None or c["cluster"] == cluster) for c in cs)):
                return (cs,)
            return None
        return wait_for(f"clients of {tenant or 'every tenant'} all connected{' to ' + cluster if cluster else ''}",
                        connected, timeout)[0]

    def host_map(self, name):
        """What HAProxy of host `name` routes each tenant's Host to (its runtime `show map`)."""
        h = self.info["hosts"][name]
        p = run(["socat", "-t", "2", "-", f"UNIX-CONNECT:{h['haproxy_socket']}"], input=f"show map {h['map_file']}\n")
        out = {}
        for line in p.stdout.splitlines():
            parts = line.split()
            if len(parts) == 3:
                out[parts[1]] = parts[2]
        return out

    def host_sessions(self, name):
        """Established sessions on host `name`'s proxy ports, from its own kernel: {(client ip, port): cookie}."""
        h = self.info["hosts"][name]
        p = self.hs("sessions", "list", "--port", "80,443", "--json", config=h["headshift_config"], netns=h["netns"],
                    check=True)
        return {s["remote"]: s["cookie"] for s in json.loads(p.stdout)["sockets"]}

    def health(self, cluster):
        """The stand-in of `cluster` about itself (GET /health): `reloads`, the restarts it went through."""
        c = next(c for c in self.control_config()["clusters"] if str(c["id"]) == str(cluster))
        with urllib.request.urlopen(c["control_url"] + "/health", timeout=10) as r:
            return json.load(r)

    def control_config(self):
        with open(self.info["control_config"]) as f:
            return yaml.safe_load(f)

    # ---- down ----
    def down(self, quiet=True):
        """Everything the lab made (labkit.Lab.teardown: processes, the sandbox underneath, veths, namespaces,
        files), also from leftovers alone; prints each cleanup error, then raises LabError."""
        super().down(quiet=quiet)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--name", default="fl")
    sub = ap.add_subparsers(dest="cmd", required=True)
    up = sub.add_parser("up")
    up.add_argument("--hosts", type=int, default=3)
    up.add_argument("--tenants", type=int, default=3)
    up.add_argument("--devices", type=int, default=20)
    sub.add_parser("down")
    sub.add_parser("status")
    a = ap.parse_args()
    lab = FleetLab(a.name)
    try:
        return _command(lab, a)
    except LabError as e:
        print(f"fleetlab: error: {e}", file=sys.stderr)
        return 1


def _command(lab, a):
    if a.cmd == "up":
        info = lab.up(a.hosts, a.tenants, a.devices)
        print(f"fleet lab {a.name} up in {info['up_s']} s: {len(info['hosts'])} proxy hosts, {info['clients']} devices")
        print(f"  inventory: {info['inventory']}")
        print(f"  control config: {info['control_config']}")
        print(f"  ansible-playbook -i {info['inventory']} playbooks/ansible/migrate_tenant.yml -e tenant=hsa -e to=4")
    elif a.cmd == "down":
        lab.down()
    else:
        with open(lab.path("lab.json")) as f:
            lab.info = json.load(f)
        for name in lab.info["hosts"]:
            print(name, json.dumps(lab.host_map(name)))
        for t, s in lab.summary()["tenants"].items():
            print(t, json.dumps({k: s.get(k) for k in ("clients", "connected", "connected_by_cluster", "disconnects")}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
