#!/usr/bin/python3
"""`real` tier at (CI-sized) scale: a tenant move asserted from the devices' own records.

The lab (sandbox/real/reallab.py with a swarm, lab_swarm.py): 3 tenants on headscale nodes 3 and 4 (hsa and hsc
on 3, hsb on 4), each with REAL_SCALE_SWARM (default 100) real tailscale control clients (tests/peers/swarm) and
2 tailscaled (WireGuard probes), isolated by a per-user policy. `headshift migrate hsa --to 4 --yes` runs while
every device is watched; then, from what the devices recorded (never from headshift's report, which is only
checked against them):
  - every device of hsa got a new netmap after the move with the node key and node ID it had before, and the
    target's own API lists it online;
  - no device of any tenant saw NeedsLogin / an AuthURL;
  - no device of another tenant lost its control connection unless the report announced it: the target
    restart may drop the devices of tenants homed on the target (hsb), and no more than the report counted;
    the source's (hsc) are never reset (headscale may end a poll itself when its client falls behind reading
    on this saturated 2-core lab: EOF, not a reset, and the device is back);
  - a restart of hsa's swarm keeps every identity (same node key and ID, no new node row).

Run: flock /tmp/headshift-lab.lock ctest -L real -R real_scale (or python3 -m unittest -v test_real_scale)
Env: HEADSHIFT_BIN, HEADSHIFT_PEERS_DIR, REAL_SCALE_SWARM (swarm devices per tenant).
"""
import json
import os
import subprocess
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "sandbox", "real"))

import observe  # noqa: E402
from lab_suite import LabSuite  # noqa: E402
from observed_move import observed_move  # noqa: E402

HEADSHIFT = os.environ.get("HEADSHIFT_BIN", os.path.join(REPO, "build", "cli", "headshift"))
SWARM = int(os.environ.get("REAL_SCALE_SWARM", "100"))


def identities(lab, t):
    """device -> (node_key, node_id) of its last netmap, from the swarm's records."""
    return {d: (x.node_key, x.node_id) for d, x in lab.swarm(t).timelines().items()}


class RealScale(LabSuite):
    NAME = "rs"
    PEERS = LabSuite.PEERS + ("swarm",)

    @classmethod
    def up(cls, lab):
        lab.up(3, 2, ["3", "4"], "traefik", swarm=SWARM, policy="per-user", tagged=0)

    def test_move_seen_by_the_swarm(self):
        lab = self.lab
        lab.load()
        homes = {t: ti["home"] for t, ti in lab.info["tenants"].items()}
        self.assertEqual(homes["hsa"], "3")
        self.assertEqual(homes["hsb"], "4")
        lab.wait_online(timeout=300)
        before = {t: identities(lab, t) for t in homes}
        for t, ids in before.items():
            self.assertEqual(len(ids), SWARM)
            self.assertTrue(all(k and i for k, i in ids.values()), f"{t}: a swarm device without a netmap")
        # The policy isolates the tenants: a device's netmap holds its own tenant's devices only.
        peers = {x.peers for x in lab.swarm("hsa").timelines().values()}
        self.assertTrue(peers and max(peers) <= SWARM + 2 - 1, f"hsa devices see {peers} peers")

        argv = [HEADSHIFT, "--config", lab.info["config"], "--json", "migrate", "hsa", "--to", "4", "--yes"]
        res = observed_move(lab, "hsa", "4", argv, timeout=600, reconnect_wait_s=120)
        self.assertEqual(res["exit_code"], 0, res["stderr"][-2000:] + res["stdout"][-2000:])
        report = res["report"] or {}
        w = res["swarm_watch"]["hsa"]

        # Every moved device: a new netmap after the move started, same node key and ID, online on the target.
        online = observe.online_on_node(lab, "4", "hsa")
        for d, (key, nid) in before["hsa"].items():
            nms = [r for r in w.netmaps[d] if r["t"] / 1000.0 >= res["started_at"]]
            self.assertTrue(nms, f"{d}: no netmap after the move")
            self.assertEqual({(r["node_key"], r["node_id"]) for r in nms}, {(key, nid)}, d)
            self.assertTrue(online.get(d), f"{d}: not online on the target's API")
        self.assertEqual(res["identity"], {})
        self.assertEqual(lab.tenant_node_rows("3", "hsa"), 0)
        self.assertEqual(lab.tenant_node_rows("4", "hsa"), SWARM + 2)
        self.assertEqual(res["registrations"], [])
        # The source's API no longer lists them either (its in-memory ghosts deleted, several at a time).
        ghosts = [n["name"] for n in lab.node_api("3", "/api/v1/node").get("nodes", [])
                  if (n.get("user") or {}).get("name") == "hsa"]
        self.assertEqual(ghosts, [], "node 3 still lists devices of hsa")

        # What this 2-core lab adds: headscale itself ends the long poll of a client that falls behind reading
        # its maps (its log: "timeout sending to channel", observe.stale_drops; seen before any move too), most
        # often while the source deletes the moved devices' in-memory entries: every delete recompiles the
        # policy and sends each remaining device a full map per batch tick. Such a device sees its poll end
        # with EOF; a reset by the move shows as "connection reset by peer" instead.
        swarm_devices = {t: set(w.devices) for t, w in res["swarm_watch"].items()}

        def back(t, d):
            """Waits (bounded) until device d of tenant t has its netmap back; returns its loss errors."""
            if d not in swarm_devices[t]:
                self.assertNotIn(d, res["tenants"][t]["unrecovered"], f"{d}: not back")
                return [e[2] for e in res["watch"].losses(d)], []
            deadline = time.time() + 120
            while True:
                tl = lab.swarm(t).timelines(since=res["started_at"])[d]
                if not any(v is None for v in tl.interruptions_ms()):
                    return [e[2] for e in tl.events if e[1] == "error"], [e[0] for e in tl.losses]
                self.assertLess(time.time(), deadline, f"{d}: not back 120 s after losing its poll")
                time.sleep(1)

        # Nobody was asked to log in again; every moved device is back, any other too.
        for t, s in res["tenants"].items():
            self.assertEqual(s["reauth"], [], t)
            self.assertEqual(s.get("identity_changed", []), [], t)
        self.assertEqual(res["tenants"]["hsa"]["unrecovered"], [])
        for d in res["tenants"]["hsb"]["unrecovered"]:  # the target's own devices, after its restart
            back("hsb", d)

        # The source's devices (hsc) are never reset: a lost poll there was never a reset, the device is back,
        # and a swarm device's loss came after node 3 logged it dropped that device's poll (within a minute).
        for d in res["tenants"]["hsc"]["disconnected"]:
            errors, lost_at = back("hsc", d)
            stale = observe.stale_drops(lab, "3", since=res["started_at"] - 1)
            self.assertFalse([e for e in errors if "reset by peer" in e], f"{d}: control connection reset: {errors}")
            if d in swarm_devices["hsc"]:
                dropped_at = stale.get(int(before["hsc"][d][1]), [])
                for t_lost in lost_at:
                    # The poll ends once headscale has written what it had queued (30 maps, seconds behind).
                    self.assertTrue([x for x in dropped_at if x - 1 <= t_lost <= x + 60],
                                    f"{d} lost its poll at {t_lost:.1f} and node 3 logged no stale drop of it in the "
                                    f"minute before ({dropped_at}): {errors}")
        stale = observe.stale_drops(lab, "3", since=res["started_at"] - 1)
        dropped = res["tenants"]["hsb"]["disconnected"]
        tr = report.get("target_restart") or {}
        if dropped:
            self.assertTrue(tr.get("restarted"), f"hsb devices lost their connection, report: {tr}")
            self.assertLessEqual(len(dropped), tr.get("devices_reconnecting") or 0, tr)
        print(json.dumps({"hsa": res["tenants"]["hsa"]["interruption_ms"], "elapsed_ms": res["elapsed_ms"],
                          "hsc_lost_polls": len(res["tenants"]["hsc"]["disconnected"]),
                          "node3_stale_drops": sum(len(v) for v in stale.values()),
                          "hsb_dropped": len(dropped), "target_restart": tr.get("devices_reconnecting"),
                          "probe": res["probe"]}), file=sys.stderr)

        # A restart of the swarm keeps its identities: same keys and IDs, no new row.
        lab.stop_swarm("hsa")
        t0 = time.time()
        lab.start_swarm("hsa")
        lab.wait_swarms(300, tenants=["hsa"], since=t0)
        after = {d: (x.node_key, x.node_id) for d, x in lab.swarm("hsa").timelines(since=t0).items()}
        self.assertEqual(after, before["hsa"])
        reauth = [d for d, x in lab.swarm("hsa").timelines(since=t0).items() if x.reauths]
        self.assertEqual(reauth, [])
        self.assertEqual(lab.tenant_node_rows("4", "hsa"), SWARM + 2)

        # `reallab.py status` counts the swarm devices as they say.
        p = subprocess.run([sys.executable, os.path.join(REPO, "sandbox", "real", "reallab.py"), "--name", "rs",
                            "status", "--json", "--tenant", "hsa"], capture_output=True, text=True, timeout=120)
        self.assertEqual(p.returncode, 0, p.stderr)
        st = json.loads(p.stdout)["swarm"]["hsa"]
        self.assertEqual((st["devices"], st["registered"], st["needs_login"]), (SWARM, SWARM, 0))


if __name__ == "__main__":
    unittest.main()
