#!/usr/bin/python3
"""The cost of the pacing's "back" signal on a real headscale node holding thousands of devices: latency,
response bytes and headscale CPU of each way to ask "which of the tenant's devices are connected?".

  batcher    GET <debug listener :9090>/debug/batcher, Accept: application/json (what headshift reads when the
             cluster has debug_url): {"connected_nodes": {id: {"connected", "active_connections"}}, ...}
  api-all    GET /api/v1/node (bearer API key): every node of the headscale, with `online`
  api-user   GET /api/v1/node?user=<tenant> (the fallback signal without debug_url): the tenant's nodes only

The lab (sandbox/real/reallab.py, swarms): --tenants T tenants, all homed on node 3, each with --swarm S real
tailscale control clients + --devices D tailscaled (default 4 x 500 + 1: 2,004 devices on node 3); node 4 is
empty (the lab has two nodes). Once every device has its netmap, each signal is asked --requests N times per
round, the signals in turn, --rounds R rounds (load from other processes hits them alike), one new TCP
connection per request (as a poller does), once headscale has settled (its own CPU rate below --quiet-below:
the arrivals of 2,000 devices keep it busy for minutes). Per request: wall time until the last byte, body
bytes. Per batch: headscale's CPU seconds (utime+stime of its process, /proc) minus its idle rate (measured
for --idle-s just before and just after the batch) times the batch's duration, divided by N. The answers are also checked: each signal must see the tenant's devices
connected (a signal that answers fast but wrong is no signal).

    flock /tmp/headshift-lab.lock /usr/bin/python3 bench/real_peers/signal_cost.py --json bench/results/signal_cost.json

--lab NAME measures a lab that is already up (no up/down; its node --node, tenant --tenant).
"""
import argparse
import http.client
import json
import os
import platform
import subprocess
import sys
import time
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "sandbox", "real"))
import observe  # noqa: E402
import reallab  # noqa: E402

CLK = os.sysconf("SC_CLK_TCK")
SIGNALS = ("batcher", "api-all", "api-user")


def log(msg):
    print(f"[signal_cost {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def cpu_ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        st = f.read().rsplit(")", 1)[1].split()
    return int(st[11]) + int(st[12])


def fetch(url, headers, timeout=60):
    """One GET on a new connection: (status, body, seconds until the last byte)."""
    u = urllib.parse.urlsplit(url)
    t0 = time.perf_counter()
    conn = http.client.HTTPConnection(u.hostname, u.port or 80, timeout=timeout)
    try:
        conn.request("GET", u.path + (f"?{u.query}" if u.query else ""), headers=headers)
        r = conn.getresponse()
        body = r.read()
    finally:
        conn.close()
    return r.status, body, time.perf_counter() - t0


class Signals:
    def __init__(self, lab, node, tenant):
        n = lab.info["nodes"][node]
        with open(n["api_key_file"]) as f:
            key = f.read().strip()
        auth = {"Authorization": f"Bearer {key}"}
        debug = lab.debug_url(node)
        self.requests = {
            "batcher": (debug + "/debug/batcher", {"Accept": "application/json"}),
            "api-all": (n["control_url"] + "/api/v1/node", auth),
            "api-user": (n["control_url"] + "/api/v1/node?user=" + urllib.parse.quote(tenant), auth),
        }
        # The tenant's node ids on this node (what the batcher's answer is filtered by).
        self.tenant_ids = {str(x["id"]) for x in lab.node_api(node, f"/api/v1/node?user={tenant}")["nodes"]}

    def ask(self, sig):
        url, headers = self.requests[sig]
        status, body, s = fetch(url, headers)
        if status != 200:
            raise RuntimeError(f"{sig}: HTTP {status}: {body[:300]!r}")
        return body, s

    def connected(self, sig, body):
        """How many of the tenant's devices the answer says are connected."""
        doc = json.loads(body)
        if sig == "batcher":
            nodes = doc.get("connected_nodes") or {}
            return sum(1 for i, v in nodes.items() if i in self.tenant_ids and v.get("connected"))
        return sum(1 for x in doc.get("nodes", []) if str(x["id"]) in self.tenant_ids and x.get("online"))


def measure(lab, node, tenant, requests, rounds, idle_s):
    pid = lab.pid(f"headscale-{node}")
    sig = Signals(lab, node, tenant)
    log(f"node {node} (pid {pid}); tenant {tenant}: {len(sig.tenant_ids)} devices")
    lat = {s: [] for s in SIGNALS}
    size = {s: [] for s in SIGNALS}
    seen = {s: [] for s in SIGNALS}
    cpu = {s: [] for s in SIGNALS}  # net CPU seconds per request, per batch
    raw_cpu = {s: [] for s in SIGNALS}
    idle_rates = []
    for r in range(rounds):
        for s in SIGNALS:
            # headscale's own rate around the batch (keep-alives of thousands of devices, stragglers' retries):
            # measured just before and just after it, the batch is charged only what exceeds their mean.
            idle_before = idle_rate(pid, idle_s)
            c0, t0 = cpu_ticks(pid), time.monotonic()
            for _ in range(requests):
                body, secs = sig.ask(s)
                lat[s].append(secs * 1000.0)
                size[s].append(len(body))
                seen[s].append(sig.connected(s, body))
            dt = time.monotonic() - t0
            used = (cpu_ticks(pid) - c0) / CLK
            idle = (idle_before + idle_rate(pid, idle_s)) / 2
            idle_rates.append(idle)
            raw_cpu[s].append(used / requests)
            cpu[s].append(max(0.0, used - idle * dt) / requests)
        log(f"round {r + 1}/{rounds}: " + ", ".join(
            f"{s} p50 {observe.percentiles(lat[s])['p50']} ms" for s in SIGNALS) + f"; idle {idle:.2f} CPU/s")
    out = {}
    for s in SIGNALS:
        out[s] = {"request": lab_request_text(s, sig), "requests": len(lat[s]),
                  "latency_ms": observe.percentiles(lat[s]),
                  "bytes": {"min": min(size[s]), "max": max(size[s])},
                  "cpu_ms_per_request": round(1000 * sum(cpu[s]) / len(cpu[s]), 2),
                  "cpu_ms_per_request_raw": round(1000 * sum(raw_cpu[s]) / len(raw_cpu[s]), 2),
                  "tenant_connected_seen": {"min": min(seen[s]), "max": max(seen[s])}}
    return out, {"tenant_devices": len(sig.tenant_ids), "idle_cpu_per_s": round(sum(idle_rates) / len(idle_rates), 4)}


def idle_rate(pid, seconds):
    """headscale's CPU seconds per second over `seconds` with no request of ours."""
    c0, t0 = cpu_ticks(pid), time.monotonic()
    time.sleep(seconds)
    return (cpu_ticks(pid) - c0) / CLK / (time.monotonic() - t0)


def wait_quiet(pid, below, timeout):
    """Until headscale's idle rate is below `below` CPU/s (the devices' arrivals worked off), at most timeout
    seconds; returns the last rate measured."""
    deadline = time.monotonic() + timeout
    while True:
        rate = idle_rate(pid, 5.0)
        if rate < below or time.monotonic() >= deadline:
            return rate
        log(f"headscale busy ({rate:.2f} CPU/s): waiting for it to settle")


def lab_request_text(s, sig):
    url, headers = sig.requests[s]
    u = urllib.parse.urlsplit(url)
    return f"GET :{u.port}{u.path}{'?' + u.query if u.query else ''}" + (
        " (Accept: application/json)" if headers.get("Accept") else " (API key)")


def wait_connected(lab, fraction, timeout):
    """Until at least `fraction` of the swarm devices have their control session up (their records say so);
    returns how many have. headscale v0.29.3 with 2,000 devices on one node leaves a few map requests
    unanswered for minutes (its batcher drops "stale" connections): 0.99 measures the node as it is."""
    deadline = time.monotonic() + timeout
    last = 0.0
    while True:
        counts = [lab.swarm_counts(t) for t in lab.swarm_tenants()]
        up, total = sum(c["connected"] for c in counts), sum(c["devices"] for c in counts)
        if up >= fraction * total:
            return up
        if time.monotonic() >= deadline:
            raise RuntimeError(f"only {up} of {total} swarm devices connected after {timeout:.0f} s")
        if time.monotonic() - last > 30:
            log(f"{up} of {total} swarm devices connected")
            last = time.monotonic()
        time.sleep(5)


def node_devices(lab, node):
    return int(lab.psql(f"hs{node}", "SELECT count(*) FROM nodes WHERE deleted_at IS NULL"))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--name", default="sigcost")
    ap.add_argument("--lab", help="measure this lab (already up) instead of bringing one up")
    ap.add_argument("--tenants", type=int, default=4)
    ap.add_argument("--swarm", type=int, default=500, help="swarm devices per tenant")
    ap.add_argument("--devices", type=int, default=1, help="tailscaled per tenant")
    ap.add_argument("--swarm-concurrency", type=int, default=10)
    ap.add_argument("--node", default="3")
    ap.add_argument("--tenant", default="hsa")
    ap.add_argument("--requests", type=int, default=10, help="requests per signal per round")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--idle-s", type=float, default=2.0,
                    help="headscale's idle CPU measured this long before and after each batch")
    ap.add_argument("--quiet-below", type=float, default=0.15,
                    help="before measuring, wait until headscale uses less than this many CPU/s (default 0.15)")
    ap.add_argument("--quiet-timeout", type=float, default=600)
    ap.add_argument("--up-timeout", type=float, default=1800)
    ap.add_argument("--min-connected", type=float, default=1.0,
                    help="measure once this fraction of the swarm devices is connected (default: all)")
    ap.add_argument("--json")
    args = ap.parse_args()
    own = not args.lab
    lab = reallab.Lab(args.lab or args.name)
    t_all = time.monotonic()
    try:
        if own:
            names = [f"hs{chr(ord('a') + i)}" for i in range(args.tenants)]
            log(f"lab up: {args.tenants} tenants x ({args.swarm} swarm + {args.devices} tailscaled), all on node 3")
            lab.info = {}
            try:
                lab.up(args.tenants, args.devices, ["3", "4"], "traefik", swarm=args.swarm, policy="probes",
                       tagged=0, swarm_concurrency=args.swarm_concurrency, swarm_timeout=args.up_timeout,
                       homes={t: "3" for t in names})
            except reallab.LabError as e:  # swarms not all up: measure what is, if enough (--min-connected)
                if "swarm devices without a netmap" not in str(e) or args.min_connected >= 1.0:
                    raise
                log(f"{e}: measuring with --min-connected {args.min_connected}")
            log(f"lab up in {lab.info.get('up_s')} s (swarms {lab.info.get('swarm_up_s')} s)")
        lab.load()
        connected = wait_connected(lab, args.min_connected, args.up_timeout)
        quiet = wait_quiet(lab.pid(f"headscale-{args.node}"), args.quiet_below, args.quiet_timeout)
        devices = node_devices(lab, args.node)
        log(f"node {args.node}: {devices} devices, {connected} swarm devices connected")
        results, extra = measure(lab, args.node, args.tenant, args.requests, args.rounds, args.idle_s)
        doc = {"when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
               "machine": {"cpus": os.cpu_count(), "kernel": platform.release(),
                           "loadavg": [round(x, 1) for x in os.getloadavg()]},
               "headscale": subprocess_version([reallab.peer_bin("headscale"), "version"]),
               "node": args.node, "node_devices": devices, "swarm_connected": connected,
               "idle_cpu_per_s_at_start": round(quiet, 3), "tenant": args.tenant,
               **extra,
               "shape": {"tenants": args.tenants, "swarm_per_tenant": args.swarm, "tailscaled_per_tenant": args.devices,
                         "policy": lab.info["acl_policy"]["kind"]} if own else {"lab": args.lab},
               "command": " ".join(["bench/real_peers/signal_cost.py"] + sys.argv[1:]),
               "bench_s": round(time.monotonic() - t_all), "signals": results}
        for s, r in results.items():
            log(f"{s}: {r['request']}: latency p50 {r['latency_ms']['p50']} p99 {r['latency_ms']['p99']} ms, "
                f"{r['bytes']['max']} bytes, headscale CPU {r['cpu_ms_per_request']} ms/request "
                f"(raw {r['cpu_ms_per_request_raw']}), sees {r['tenant_connected_seen']} of "
                f"{extra['tenant_devices']} connected")
        if args.json:
            os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
            with open(args.json, "w") as f:
                json.dump(doc, f, indent=1)
        print(json.dumps(doc))
    finally:
        if own:
            lab.down(quiet=True)


def subprocess_version(argv):
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=30).stdout.strip().splitlines()[0]
    except (OSError, IndexError, subprocess.SubprocessError):
        return None


if __name__ == "__main__":
    main()
