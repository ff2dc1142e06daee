"""The real-peer lab at scale: per tenant, a swarm of real tailscale control clients (sandbox/real/swarm.py,
tests/peers/swarm) in the tenant's namespace next to its few tailscaled, and the tenants' isolation policy.

Swarm devices register through headscale like the tailscaled do: each tenant's swarm logs in to
http://<tenant>.demo.com (the edge, by host name, :80 then :443) with the tenant's pre-auth key, so every
device is registered on its tenant's home node by headscale itself (/machine/register), nothing is seeded.
A swarm shard is recorded in the lab's ledger (pidfile swarm-<tenant>-<k>), so `down` stops it.

Policy, one file for every node:
  per-user  one rule per tenant {"action": "accept", "src": ["<t>@"], "dst": ["<t>@:*"]}: a tenant's devices
            see only each other (a full mesh per tenant).
  probes    per tenant {"action": "accept", "src": [its tailscaled], "dst": ["<t>-<k>:*" for its tailscaled]}
            (hosts by tailnet address): a tenant's tailscaled see each other (the WireGuard probes), a swarm
            device sees no peer. Written once the tailscaled have addresses (until then: a rule that matches no
            node), then every node is restarted to load it, before the swarms start.
  none      headscale's allow-all.
Why `probes` for big swarms: with per-user and tenants of 200-500 swarm devices, headscale v0.29.3 on this
2-core box (shared with compilers) spent its time on peer-change map responses (every registration is a
change for each device that sees the new one: O(tenant^2)) and sent almost no first netmaps: after 4 minutes
75 of 2,300 devices had one, the rest timed out their map requests and reconnected. With every swarm device
seeing only its tenant's 2 tailscaled it was still 45 netmaps in 80 s (the tailscaled, seeing 200-500 peers,
got a peer change per registration). With swarm devices seeing no peer, one node registered 1,000 in ~4 min
(tests/peers/swarm/README.md). Measured 2026-12-07; per-user is fine at 100 devices per tenant
(tests/real/test_real_scale.py). So the scale lab measures the control sessions, not peer fan-out.

A mixin of reallab.Lab (needs self.info, self.path, self.ledger, self.save)."""
import time

from labkit import LabError
from labkit.processes import start_time
from swarm import Swarm, SwarmError, SwarmWatch  # noqa: F401 - SwarmWatch: the lab's users import it here

# Matches no node: every device alone (the tailscaled register under it before the `probes` policy).
ISOLATED = {"hosts": {"nobody": "192.0.2.1/32"}, "acls": [{"action": "accept", "src": ["nobody"],
                                                            "dst": ["nobody:*"]}]}


def per_user_policy(tenants):
    return {"acls": [{"action": "accept", "src": [f"{t}@"], "dst": [f"{t}@:*"]} for t in tenants]}


def probes_policy(probes):
    """probes: tenant -> {device name: tailnet IPv4} of its tailscaled."""
    hosts, acls = {}, []
    for t, devs in probes.items():
        for d, ip in devs.items():
            hosts[d] = f"{ip}/32"
        acls.append({"action": "accept", "src": list(devs), "dst": [f"{d}:*" for d in devs]})
    return {"hosts": hosts, "acls": acls}


class SwarmMixin:
    # ---- swarms ------------------------------------------------------------------------------------
    def swarm_dir(self, t):
        return self.path("swarm", t)

    def swarm_tenants(self):
        return [t for t, ti in self.info["tenants"].items() if ti.get("swarm")]

    def swarm(self, t):
        """Tenant t's Swarm (loaded from its directory)."""
        return Swarm.load(self.swarm_dir(t))

    def swarm_devices(self, tenant=None):
        out = []
        for t in self.swarm_tenants():
            if tenant is None or t == tenant:
                out += [f"{t}-sw-{k}" for k in range(1, self.info["tenants"][t]["swarm"] + 1)]
        return out

    def _record_swarm(self, t, sw):
        for s in sw.info["shards"]:
            if s.get("pid"):
                self.ledger.record_pid(f"swarm-{t}-{s['index']}", s["pid"], start_time(s["pid"]), 0)

    def _forget_swarm(self, t, sw):
        for s in sw.info["shards"]:
            self.ledger.forget_pid(f"swarm-{t}-{s['index']}")

    def _start_swarms(self, tenants, per_tenant, concurrency):
        """Every tenant's swarm at once (the registrations spread over the nodes); returns without waiting.
        per_tenant: a count for every tenant, or {tenant: count} (a tenant it does not name gets none)."""
        for t in tenants:
            n = per_tenant.get(t, 0) if isinstance(per_tenant, dict) else per_tenant
            if not n:
                continue
            ti = self.info["tenants"][t]
            sw = Swarm(self.swarm_dir(t), server=f"http://{ti['host']}", authkey_file=ti["authkey_file"],
                       count=n, prefix=f"{t}-sw", netns=ti["ns"], concurrency=concurrency,
                       ca_file=self.info["tls"]["ca"],
                       env={"TS_NO_LOGS_NO_SUPPORT": "true"})
            try:
                sw.start()
            except SwarmError as e:
                raise LabError(f"swarm of {t}: {e}") from None
            self._record_swarm(t, sw)
            ti["swarm"] = n
            self.save()

    def stop_swarm(self, t):
        """SIGTERM to tenant t's swarm: its devices stop without logging out (identities kept)."""
        sw = self.swarm(t)
        sw.stop()
        self._forget_swarm(t, sw)
        return sw

    def start_swarm(self, t):
        """Starts tenant t's swarm again: same devices, same keys, no new registration."""
        sw = self.swarm(t)
        try:
            sw.start()
        except SwarmError as e:
            raise LabError(f"swarm of {t}: {e}") from None
        self._record_swarm(t, sw)
        return sw

    def swarm_counts(self, t):
        """What tenant t's swarm devices say: devices, registered (a netmap once), connected (the last event
        is a netmap: the control session is up), needs_login (a re-authentication ever asked)."""
        tl = self.swarm(t).timelines()
        connected = sum(1 for x in tl.values() if _connected(x))
        return {"devices": len(tl), "registered": sum(1 for x in tl.values() if x.netmaps),
                "connected": connected, "needs_login": sum(1 for x in tl.values() if x.reauths)}

    def wait_swarms(self, timeout, tenants=None, since=None, connected=False):
        """Until every swarm device of the tenants has a netmap (since `since`, seconds since the epoch);
        connected: and its control session is up now (its last loss was followed by a netmap)."""
        deadline = time.monotonic() + timeout
        pending = list(tenants or self.swarm_tenants())
        last_log = 0.0
        while pending:
            left = []
            for t in pending:
                sw = self.swarm(t)
                tl = sw.timelines(since)
                bad = sum(1 for x in tl.values() if not x.netmaps or (connected and not _connected(x)))
                if bad:
                    if not sw.alive():
                        raise LabError(f"a swarm shard of {t} exited (logs in {sw.dir})")
                    left.append((t, bad))
            pending = [t for t, _ in left]
            if not pending:
                break
            if time.monotonic() >= deadline:
                raise LabError(f"swarm devices without a netmap after {timeout:.0f} s: "
                               + ", ".join(f"{t} {n}" for t, n in left))
            if time.monotonic() - last_log > 30:
                self.log("swarms: waiting for " + ", ".join(f"{t} {n}" for t, n in left))
                last_log = time.monotonic()
            time.sleep(2)


def _connected(timeline):
    """The device's control session is up: its last lost / netmap / start / stop event is a netmap."""
    last = [e for e in timeline.events if e[1] in ("lost", "netmap", "stop", "start")]
    return bool(last) and last[-1][1] == "netmap"
