"""bench/real_peers/scale.py's headshift-drain run: `headshift drain 3 --to 4,5` on the scale lab while every
device is watched; what the moved devices, the targets' own devices and the nodes' start times show."""
import os

import observe
from headscale_usage import Sampler, headscale_starts
from observed_move import observed_move

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
HS = os.environ.get("HEADSHIFT_BIN", os.path.join(REPO, "build", "cli", "headshift"))


def measure_drain(lab, args):
    """`headshift drain 3 --to 4,5` while every device is watched: the moved tenants' interruptions, the
    targets' restarts (start times) and what their own devices saw."""
    homes = {t: ti["home"] for t, ti in lab.info["tenants"].items()}
    moved = [t for t, h in homes.items() if h == "3"]
    argv = [HS, "--config", lab.info["config"], "--json", "drain", "3", "--to", "4,5"]
    sampler = Sampler(lab).start()
    # observed_move watches every tenant; "hsa"/"4" only name whose probe pair and API view it reports.
    res = observed_move(lab, "hsa", "4", argv, timeout=args.move_timeout, reconnect_wait_s=args.reconnect_wait)
    usage = sampler.stop()
    ended = res["started_at"] + res["elapsed_ms"] / 1000.0
    lab.load()
    report = res["report"] or {}
    placed = {}
    for t in moved:
        for c in ("4", "5"):
            if int(lab.psql(f"hs{c}", "SELECT count(*) FROM nodes n JOIN users u ON u.id = n.user_id "
                                      f"WHERE u.name = '{t}' AND n.deleted_at IS NULL")):
                placed[t] = c
    targets = sorted(set(placed.values()))
    sw = res["swarm_watch"]
    inter, back60, disconnected, unrecovered = [], 0, 0, 0
    for t in moved:
        s = res["tenants"][t]
        inter += [v for d in sw[t].devices for v in sw[t].interruptions_ms(d) if v is not None] if t in sw else []
        disconnected += len(s["disconnected"])
        unrecovered += len(s["unrecovered"])
        if t in sw:
            back60 += sum(1 for d in sw[t].devices
                          if sw[t].interruptions_ms(d) and all(v is not None and v <= 60000
                                                               for v in sw[t].interruptions_ms(d)))
    own = {}  # the targets' own devices (tenants homed there): interruptions per device during the drain
    for c in targets:
        counts, iv_all = [], []
        for t in [t for t, h in homes.items() if h == c and t in sw]:
            for d in sw[t].devices:
                iv = sw[t].interruptions_ms(d)
                counts.append(len(iv))
                iv_all += [v for v in iv if v is not None]
        own[c] = {"devices": len(counts), "disconnected": sum(1 for n in counts if n),
                  "disconnected_more_than_once": sum(1 for n in counts if n > 1),
                  "interruption_ms": {k: v for k, v in observe.percentiles(iv_all).items() if k != "n"}}
    devices = {t: len(lab.info["tenants"][t]["devices"]) + lab.info["tenants"][t].get("swarm", 0) for t in homes}
    out = {
        "method": "headshift-drain", "exit_code": res["exit_code"], "tenants": len(homes),
        "devices_total": sum(devices.values()), "drained": "3", "to": ["4", "5"], "placement": placed,
        "tenants_moved": len(moved), "devices_moved": sum(devices[t] for t in moved),
        "interruption_ms": {k: v for k, v in observe.percentiles(inter).items() if k != "n"},
        "disconnected": disconnected, "reconnected_swarm_within_60s": back60, "unrecovered": unrecovered,
        "reauth": sum(len(s["reauth"]) for s in res["tenants"].values()),
        "identity_changed": sum(len(s.get("identity_changed", [])) for s in res["tenants"].values()) +
        len(res["identity"]),
        "lost_probes": res["probe"]["lost"], "probes": res["probe"]["sent"], "total_ms": res["elapsed_ms"],
        "target_restarts_per_target": {c: headscale_starts(lab, c, res["started_at"], ended) for c in ("4", "5")},
        "target_restarts_reported": report.get("target_restarts"),
        "targets_own_devices": own,
        "headscale": usage, "headscale_cpu_s": {c: u["cpu_s"] for c, u in usage.items()},
        "headscale_rss_max_mib": {c: u["rss_max_mib"] for c, u in usage.items()},
        "registrations": len(res["registrations"]),
    }
    if res["exit_code"] != 0:
        out["stderr"] = res["stderr"][-1500:]
    return out
