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
It writes <state>/headshift.yaml for `headshift --config` and <state>/lab.json; every namespace, veth, process
and file carries the prefix hr<name> and is recorded by the lab toolkit (sandbox/labkit), so `up` first sweeps
what a dead lab of the same name left, and `down` removes everything, printing each cleanup error (exit 1).
A failure during `up` takes down what was made. `restart-node` is the clusters' reload_command (headscale
>= 0.27 loads its nodes only at start). `status --json` reports, per device, what the device itself says
(`tailscale status --json`), and per tenant with a swarm what its swarm devices recorded.
At scale (`--swarm N`, lab_swarm.py): N real tailscale control clients per tenant in its namespace, registered
through headscale with the tenant's pre-auth key like the tailscaled; `--policy` isolates the tenants.
`--clusters 3,4,5`: any number of nodes (tenants round-robin over them unless `--home T=C` says otherwise).
`--cpu-limit C=CPUS`: node C's headscale runs in a CPU-limited cgroup (labkit/cgroups.py) from its first start
and across every restart; `down` removes the cgroup. Every start of a node's headscale (up, restart-node,
start-node) is appended to <state>/hs<C>/starts.jsonl (`status --json` shows them: tests count restarts).

Requires root, the peers built by scripts/setup (HEADSHIFT_PEERS_DIR, default /var/cache/headshift-peers),
postgresql, haproxy, iproute2, python3-yaml.

Files: lab_nodes.py (PostgreSQL, headscale nodes, DERP), lab_edge.py (TLS, Traefik/HAProxy), lab_devices.py
(tenant namespaces, tailscaled devices), lab_swarm.py (swarms, policy), lab_config.py (headshift.yaml, routes);
this file: naming, up, down, the command line.
"""
import argparse
import json
import os
import shutil
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))  # sandbox/: the lab toolkit
sys.path.insert(0, HERE)

import labkit  # noqa: E402
from labkit import LabError, pg_bin  # noqa: E402,F401 - pg_bin: used by bench/real_peers
from lab_config import ConfigMixin  # noqa: E402
from lab_devices import DevicesMixin  # noqa: E402
from lab_edge import EdgeMixin  # noqa: E402
from lab_nodes import PEERS_DIR, NodesMixin, peer_bin  # noqa: E402,F401 - PEERS_DIR: used by tests, demo
from lab_policy import POLICY_KINDS, POLICY_MODES, PolicyMixin, check_policy_args  # noqa: E402
from lab_swarm import SwarmMixin  # noqa: E402

REPO = os.path.dirname(os.path.dirname(HERE))


def log(msg):
    labkit.log("reallab", msg)


class Lab(NodesMixin, PolicyMixin, EdgeMixin, DevicesMixin, SwarmMixin, ConfigMixin, labkit.Lab):
    """One real-peer lab: prefix hr<name>, state <state>/lab.json (default /tmp/headshift-lab-hr<name>)."""

    def __init__(self, name, state_dir=None):
        if not name or len(name) > 8 or not all(c.isalnum() and (c.islower() or c.isdigit()) for c in name):
            raise LabError(f"lab name {name!r}: use 1-8 lower-case letters or digits")
        self.name = name
        super().__init__(f"hr{name}", state_dir, tool="reallab")
        self.index = sum(name.encode()) % 40  # second octet 10.(150+index): distinct labs rarely collide

    # ---- naming ------------------------------------------------------------------------------------
    def octet(self):
        return 150 + self.index

    def edge_ip(self):
        return f"10.{self.octet()}.0.1"

    def derp_ip(self):
        return f"10.{self.octet()}.0.2"

    def node_ip(self, i):
        return f"10.{self.octet()}.0.{10 + i}"

    def logs_keep_dir(self):
        """Where a failed `up` keeps the logs (outside the state dir, which the failure removes)."""
        return f"{self.dir}-logs"

    # ---- processes ---------------------------------------------------------------------------------
    def spawn(self, key, argv, netns=None, log_name=None, env=None, user=None, phase=0, cgroup=None):
        """labkit.Lab.spawn, and the pid in lab.json's pids (tests compare it across a refused move)."""
        p = super().spawn(key, argv, netns=netns, log_name=log_name, env=env, user=user, phase=phase, cgroup=cgroup)
        self.info.setdefault("pids", {})[key] = p.pid
        self.save()
        return p.pid

    # ---- up ----------------------------------------------------------------------------------------
    def up(self, tenants, devices, clusters, edge, noise_mismatch=False, policy="per-user", policy_mode="file",
           tagged=1, swarm=0, swarm_concurrency=20, swarm_timeout=900, homes=None, cpu_limits=None):
        """policy / policy_mode: lab_policy.py (tenants isolated per user by default, policy files + SIGHUP;
        `probes` for swarm labs); tagged: the first `tagged` tenants get a tagged server <t>-srv; swarm: swarm
        devices per tenant (lab_swarm.py), started once the tailscaled are Running; up waits until each has
        its netmap. homes: {tenant: cluster} for tenants not homed round-robin (tenant i on clusters[i % n]).
        cpu_limits: {cluster: CPUs}: that node's headscale runs in a cgroup limited to that many CPUs, from
        its first start and across every restart (lab_nodes.py)."""
        check_policy_args(policy, policy_mode)
        names = [f"hs{chr(ord('a') + i)}" for i in range(tenants)]
        homes = {t: (homes or {}).get(t, clusters[i % len(clusters)]) for i, t in enumerate(names)}
        bad = [f"{t}={c}" for t, c in homes.items() if c not in clusters]
        bad += [f"{c}={v}" for c, v in (cpu_limits or {}).items() if c not in clusters]
        if bad:
            raise LabError(f"{', '.join(bad)}: not a cluster of this lab ({','.join(clusters)})")
        self.begin(replace=True, subdirs=("logs", "secrets", "pg", "traefik/dynamic", "devices", "swarm"))
        os.chmod(self.path("secrets"), 0o700)
        self.info = {"name": self.name, "prefix": self.prefix, "dir": self.dir, "edge": edge, "clusters": clusters,
                     "edge_ip": self.edge_ip(), "tenants": {}, "nodes": {}, "namespaces": [], "pids": {},
                     "started": time.time(), "acl_policy": {"kind": policy, "mode": policy_mode},
                     "homes": homes, "cpu_limits": dict(cpu_limits or {})}
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
            self._tenant(i, t, homes[t], devices)
            if i < tagged:
                self.info["tenants"][t].update({"tagged": True, "tags": [f"tag:{t}-srv"]})
        # The policies name the users (created above) and own the tags the tagged keys carry (below).
        self.apply_lab_policies()
        for t in self.tagged_tenants():
            self._tagged_server(t)
        self._write_headshift_config(names, clusters)
        self._route_tenants(names)
        self._start_devices(names)
        self.wait_running()
        self.apply_probes_policy()  # `probes` names the tailscaled by their tailnet addresses: known only now
        if swarm:
            t1 = time.monotonic()
            self._start_swarms(names, swarm, swarm_concurrency)
            self.wait_swarms(swarm_timeout)
            self.info["swarm_up_s"] = round(time.monotonic() - t1, 1)
        self.info["up_s"] = round(time.monotonic() - t0, 1)
        self.save()
        return self.info

    def _network(self, tenants):
        """hr<L>-dc (edge, nodes, DERP on its loopback) behind a veth from the root namespace, then one
        namespace per tenant (lab_devices)."""
        o = self.octet()
        dc = self.add_netns("dc")
        self.info["namespaces"].append(dc)
        self.save()
        for addr in [self.edge_ip(), self.derp_ip()] + [self.node_ip(i) for i in range(len(self.info["clusters"]))]:
            labkit.run(["ip", "-n", dc, "addr", "add", f"{addr}/32", "dev", "lo"])
        r, d = self.link("r"), self.link("d")
        self.add_veth(r, d, None, dc)
        labkit.addr_up(r, f"10.{o}.255.1/30")
        labkit.addr_up(d, f"10.{o}.255.2/30", dc)
        labkit.run(["ip", "route", "replace", f"10.{o}.0.0/24", "via", f"10.{o}.255.2"])
        for i, t in enumerate(tenants):
            self._tenant_network(i, t, tenants)

    # ---- down --------------------------------------------------------------------------------------
    def down(self, quiet=False):
        """Everything the lab made, also when its state is gone (names with the prefix). Devices and nodes stop
        first (they hold connections), PostgreSQL last. Each cleanup error is printed; then LabError."""
        super().down(quiet=quiet)


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
    u.add_argument("--swarm", type=int, default=0, help="swarm devices per tenant (real tailscale control clients)")
    u.add_argument("--swarm-size", action="append", default=[], metavar="TENANT=N",
                   help="another swarm size for one tenant, e.g. hsa=500 (repeatable)")
    u.add_argument("--swarm-concurrency", type=int, default=20,
                   help="per tenant: swarm devices registering at once (default 20)")
    u.add_argument("--policy", choices=POLICY_KINDS,
                   help="how the nodes' ACL policies keep tenants apart: per-user rules (default), autogroup-self, "
                        "probes (a tenant's tailscaled see each other, swarm devices no peer: the default with "
                        "--swarm, lab_swarm.py says why) or none (allow-all)")
    u.add_argument("--policy-mode", choices=POLICY_MODES, default="file",
                   help="file: policy files + SIGHUP (default); database: headscale policy set")
    u.add_argument("--tagged", type=int, default=1, help="the first N tenants get a tagged server <t>-srv")
    u.add_argument("--home", action="append", default=[], metavar="TENANT=C",
                   help="home cluster of one tenant, e.g. hsb=3 (repeatable; others round-robin over --clusters)")
    u.add_argument("--cpu-limit", action="append", default=[], metavar="C=CPUS",
                   help="run cluster C's headscale in a cgroup limited to CPUS CPUs, e.g. 4=0.25 (repeatable; kept "
                        "across its restarts, removed at down; cgroup v1 cpu or v2 cpu.max)")
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
    rp = sub.add_parser("reload-policy", help="SIGHUP to a node's headscale (its policy_reload_command)")
    rp.add_argument("cluster")
    a = ap.parse_args()
    lab = Lab(a.name, a.state_dir)
    try:
        if a.cmd == "up":
            clusters = [c.strip() for c in a.clusters.split(",") if c.strip()]
            if len(clusters) < 2 or len(set(clusters)) != len(clusters):
                raise LabError("--clusters: give two or more distinct cluster ids, e.g. 3,4")
            if not 1 <= a.tenants <= 26 or not 1 <= a.devices <= 200:
                raise LabError("--tenants 1..26, --devices 1..200")
            if not 0 <= a.swarm <= 20000 or not 1 <= a.swarm_concurrency <= 500:
                raise LabError("--swarm 0..20000, --swarm-concurrency 1..500")
            swarm = a.swarm
            if a.swarm_size:
                names = [f"hs{chr(ord('a') + i)}" for i in range(a.tenants)]
                swarm = {t: a.swarm for t in names}
                for item in a.swarm_size:
                    t, _, n = item.partition("=")
                    if t not in swarm or not n.isdigit() or not 0 <= int(n) <= 20000:
                        raise LabError(f"--swarm-size {item!r}: use TENANT=N with a tenant of this lab "
                                       f"({names[0]}..{names[-1]}) and N 0..20000")
                    swarm[t] = int(n)
            names = [f"hs{chr(ord('a') + i)}" for i in range(a.tenants)]
            homes = {}
            for item in a.home:
                t, _, c = item.partition("=")
                if t not in names or c not in clusters:
                    raise LabError(f"--home {item!r}: use TENANT=C with a tenant of this lab ({names[0]}..{names[-1]}) "
                                   f"and one of --clusters ({','.join(clusters)})")
                homes[t] = c
            cpu_limits = {}
            for item in a.cpu_limit:
                c, _, n = item.partition("=")
                try:
                    cpus = float(n)
                except ValueError:
                    cpus = 0.0
                if c not in clusters or not 0.01 <= cpus <= 64:
                    raise LabError(f"--cpu-limit {item!r}: use C=CPUS with one of --clusters ({','.join(clusters)}) "
                                   "and CPUS 0.01..64, e.g. 4=0.25")
                cpu_limits[c] = cpus
            policy = a.policy or ("probes" if swarm else "per-user")
            if not 0 <= a.tagged <= a.tenants:
                raise LabError("--tagged 0..--tenants")
            try:
                info = lab.up(a.tenants, a.devices, clusters, a.edge, a.noise_mismatch, policy=policy,
                              policy_mode=a.policy_mode, tagged=a.tagged, swarm=swarm,
                              swarm_concurrency=a.swarm_concurrency, homes=homes, cpu_limits=cpu_limits)
            except BaseException:
                keep = lab.logs_keep_dir()
                log(f"up failed: taking down what was made (logs kept in {keep})")
                if os.path.isdir(lab.path("logs")):
                    shutil.rmtree(keep, ignore_errors=True)
                    shutil.copytree(lab.path("logs"), keep)
                try:
                    lab.down(quiet=True)
                except LabError as e:  # its errors are printed; the failure of `up` is the one raised
                    log(str(e))
                raise
            print(json.dumps({"name": lab.name, "dir": lab.dir, "config": info["config"], "edge": info["edge"],
                              "policy": info["acl_policy"],
                              "tenants": {t: {"home": v["home"], "devices": len(v["devices"]),
                                              "swarm": v.get("swarm", 0)} for t, v in info["tenants"].items()},
                              "nodes": {c: {"cpu_limit": n.get("cpu_limit")} for c, n in info["nodes"].items()},
                              "up_s": info["up_s"], "swarm_up_s": info.get("swarm_up_s")}))
        elif a.cmd == "down":
            lab.down()
        elif a.cmd == "status":
            lab.load()
            devs = [lab.device_status(d) for d in lab.devices(a.tenant)]
            swarms = {t: lab.swarm_counts(t) for t in lab.swarm_tenants() if a.tenant in (None, t)}
            nodes = {c: {"running": bool(lab.pid(f"headscale-{c}")), "starts": lab.node_starts(c),
                         "cpu_limit": n.get("cpu_limit")} for c, n in lab.info["nodes"].items()}
            if a.json:
                print(json.dumps({"devices": devs, "swarm": swarms, "nodes": nodes}))
            else:
                for d in devs:
                    print(f"{d['device']}: {d.get('backend_state')} id={d.get('id')} ips={','.join(d.get('ips', []))}")
                for c, n in nodes.items():
                    lim = f", CPU limit {n['cpu_limit']['cpus']}" if n["cpu_limit"] else ""
                    print(f"node {c}: {'running' if n['running'] else 'stopped'}, {len(n['starts'])} start(s){lim}")
                for t, c in swarms.items():
                    print(f"{t} swarm: {c['devices']} devices, {c['registered']} registered, {c['connected']} "
                          f"connected, {c['needs_login']} asked to log in")
        elif a.cmd == "restart-node":
            s = lab.restart_node(a.cluster)
            log(f"node {a.cluster} restarted in {s:.2f} s")
        elif a.cmd == "stop-node":
            lab.stop_node(a.cluster)
        elif a.cmd == "reload-policy":
            lab.reload_policy(a.cluster)
        elif a.cmd == "start-node":
            lab.load()
            lab.start_node(a.cluster)
    except LabError as e:
        print(f"reallab: error: {e}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
