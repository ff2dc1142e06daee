#!/usr/bin/python3
"""`real` tier: the reset's waves follow what the target absorbs, asserted from the devices' own records.

The lab (sandbox/real/reallab.py): headscale nodes 3, 4 and 5; node 5's headscale runs in a cgroup limited to
REAL_PACING_CPU CPUs (default 0.05: `--cpu-limit 5=0.05`, kept across its restarts). Two tenants of the same size
are homed on node 3 (hsa, hsb: REAL_PACING_SWARM swarm devices, default 120, + 1 tailscaled each). hsa moves to
node 4 (a normal target), then hsb to node 5 (the slowed one), each with `headshift migrate` and its default
pacing (adaptive, signal: the target's /debug/batcher). Then, from what the swarm devices recorded (never from
headshift's report, which is only checked against them):
  - each moved swarm device had its session reset after the move started; grouping those reset times (each
    device's TCP reset, swarm_records.reset_times) into bursts (swarm_records.waves: a new burst after a 0.2 s
    gap), the slowed target got smaller bursts on average and more of them than the normal one for the same
    number of devices, and the report's waves smaller on average;
  - every device of both tenants got a netmap again with the node key and ID it had, is online on its target's
    own API, nobody was asked to log in again;
  - the report's waves agree with the records: merged the same way (a wave sent within 0.2 s of the previous
    one's verdict joins its burst), they make the bursts the devices saw; mode adaptive, signal batcher.

Run: flock /tmp/headshift-lab.lock ctest -L real -R real_pacing (or python3 -m unittest -v test_real_pacing)
Env: HEADSHIFT_BIN, HEADSHIFT_PEERS_DIR, REAL_PACING_SWARM, REAL_PACING_CPU, REAL_KEEP_LAB=1 (leave the lab up).
"""
import json
import os
import sys
import unittest

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "sandbox", "real"))

import observe  # noqa: E402
import reallab  # noqa: E402
from lab_suite import LabSuite  # noqa: E402
from observed_move import observed_move  # noqa: E402
from swarm_records import reset_times, waves  # noqa: E402

HEADSHIFT = os.environ.get("HEADSHIFT_BIN", os.path.join(REPO, "build", "cli", "headshift"))
SWARM = int(os.environ.get("REAL_PACING_SWARM", "120"))
# 0.1 CPU was borderline on this box (one run behind from the second wave, the next absorbing 16 and 32 within
# the window like the normal target): 0.05 falls behind by the second wave.
CPU = float(os.environ.get("REAL_PACING_CPU", "0.05"))
GAP_S = 0.2  # resets further apart than this are separate bursts (swarm_records.waves)


def bursts(report_waves, gap_s=GAP_S):
    """The bursts of resets the report's waves make: a wave sent within gap_s of the previous one's verdict
    (its `ms`, from its start) joins it. Sizes (sockets reset)."""
    out = []
    for i, w in enumerate(report_waves):
        if out and (report_waves[i - 1].get("ms") or 0) <= gap_s * 1000:
            out[-1] += w.get("sent", 0)
        else:
            out.append(w.get("sent", 0))
    return out


def report_pacing(report):
    """The migrate report's `pacing` (README "Pacing the cut")."""
    return report.get("pacing") if isinstance(report, dict) and isinstance(report.get("pacing"), dict) else None


class RealPacing(LabSuite):
    NAME = "rp"
    PEERS = LabSuite.PEERS + ("swarm",)

    @classmethod
    def up(cls, lab):
        lab.up(2, 1, ["3", "4", "5"], "traefik", swarm=SWARM, policy="probes", tagged=0,
               homes={"hsa": "3", "hsb": "3"}, cpu_limits={"5": CPU})
        # Every API request to headscale checks the key with bcrypt (~65 ms of CPU here, bench/RESULTS.md "back
        # signal"): at 0.05 CPU that is ~1.3 s of wall time, so headshift's HTTP timeout gets room (lab: 3 s).
        with open(lab.info["config"]) as f:
            cfg = yaml.safe_load(f)
        cfg["timeouts"]["http_ms"] = 15000
        with open(lab.info["config"], "w") as f:
            yaml.safe_dump(cfg, f, sort_keys=False)

    def move(self, tenant, target):
        lab = self.lab
        lab.wait_online(timeout=300)
        before = {d: (x.node_key, x.node_id) for d, x in lab.swarm(tenant).timelines().items()}
        self.assertEqual(len(before), SWARM)
        argv = [HEADSHIFT, "--config", lab.info["config"], "--json", "migrate", tenant, "--to", target, "--yes"]
        res = observed_move(lab, tenant, target, argv, timeout=900, reconnect_wait_s=180)
        self.assertEqual(res["exit_code"], 0, res["stderr"][-2000:])
        w = res["swarm_watch"][tenant]
        # Every moved device is back: a netmap after the move with the identity it had, online on the target.
        online = observe.online_on_node(lab, target, tenant)
        for d, ident in before.items():
            nms = [r for r in w.netmaps[d] if r["t"] / 1000.0 >= res["started_at"]]
            self.assertTrue(nms, f"{d}: no netmap after the move to {target}")
            self.assertEqual({(r["node_key"], r["node_id"]) for r in nms}, {ident}, d)
            self.assertTrue(online.get(d), f"{d}: not online on node {target}'s API")
        for t, s in res["tenants"].items():
            self.assertEqual(s["reauth"], [], t)
            self.assertEqual(s.get("identity_changed", []), [], t)
            self.assertEqual(s["unrecovered"], [], t)
        self.assertEqual(res["identity"], {})
        self.assertEqual(res["registrations"], [])
        # The waves the devices saw: when each device's session was reset (its TCP reset after the move started;
        # swarm_records.reset_times), grouped into bursts by gaps (swarm_records.waves).
        lost = reset_times(w, since=res["started_at"])
        self.assertEqual(len(lost), SWARM, f"{SWARM - len(lost)} moved device(s) never lost their connection")
        seen = [len(x) for x in waves(lost.values(), gap_s=GAP_S)]
        pacing = report_pacing(res["report"])
        self.assertIsNotNone(pacing, f"no pacing in the report: {sorted((res['report'] or {}).keys())}")
        self.assertEqual(pacing.get("mode"), "adaptive", pacing)
        sent = [x for x in pacing.get("waves", []) if x.get("sent", 0) > 0]
        out = {"tenant": tenant, "target": target, "bursts_seen": seen, "bursts_reported": bursts(sent),
               "waves_reported": [(x.get("sent"), x.get("back"), x.get("ms"), x.get("judged")) for x in sent],
               "signal": pacing.get("signal"), "absorb_per_s": pacing.get("absorb_per_s"),
               "interruption_ms": res["tenants"][tenant]["interruption_ms"], "elapsed_ms": res["elapsed_ms"]}
        print(json.dumps(out), file=sys.stderr)
        return out

    def test_slowed_target_gets_smaller_waves(self):
        lab = self.lab
        lab.load()
        self.assertEqual({t: ti["home"] for t, ti in lab.info["tenants"].items()}, {"hsa": "3", "hsb": "3"})
        hs5 = lab.info["nodes"]["5"]["cpu_limit"]
        self.assertAlmostEqual(hs5["cpus"], CPU)
        normal = self.move("hsa", "4")
        lab.load()
        slowed = self.move("hsb", "5")
        # The limited headscale stayed limited across the restart the move made (its last start is in the cgroup).
        lab.load()
        starts = lab.node_starts("5")
        self.assertGreaterEqual(len(starts), 2, "the move did not restart node 5")
        self.assertIn(starts[-1]["pid"], reallab.labkit.cgroups.pids(hs5["cgroup"]))
        # The devices' records agree with the report: the bursts of resets they saw are the report's waves, a wave
        # sent within GAP_S of the previous one's verdict merged with it (the tenant's one tailscaled is in one
        # wave but not in the swarm's records: one burst may be one larger in the report).
        for m in (normal, slowed):
            self.assertEqual(m["signal"], "batcher", m)
            self.assertEqual(sum(m["bursts_seen"]), SWARM, m)
            self.assertEqual(len(m["bursts_seen"]), len(m["bursts_reported"]), m)
            diff = [r - s for s, r in zip(m["bursts_seen"], m["bursts_reported"])]
            self.assertTrue(all(x in (0, 1) for x in diff) and sum(diff) <= 1, m)
        # Same number of devices, a slower target: smaller waves on average (the report's), smaller bursts of
        # resets on average and more of them (the devices' records).
        mean = lambda xs: sum(xs) / len(xs)  # noqa: E731
        self.assertLess(mean([x[0] for x in slowed["waves_reported"]]), mean([x[0] for x in normal["waves_reported"]]),
                        f"normal target {normal['waves_reported']}, slowed target {slowed['waves_reported']}")
        self.assertGreater(len(slowed["bursts_seen"]), len(normal["bursts_seen"]),
                           f"bursts: normal target {normal['bursts_seen']}, slowed target {slowed['bursts_seen']}")
        self.assertLess(mean(slowed["bursts_seen"]), mean(normal["bursts_seen"]))


if __name__ == "__main__":
    unittest.main()
