#!/usr/bin/python3
"""The hand-run procedure of the seed blog post, on the real-peer lab (the anchor of bench/real_peers).

The blog (research/headscale.md §5): copy the tenant's rows, hot-edit Traefik's file, `ss -K` the tenant's
client addresses. On stock headscale >= 0.27 the target serves copied rows only after a restart (NodeStore),
so an operator who follows the blog there must also restart the target; without it the devices loop on 404
and the anchor would never finish. Steps, each the plain tool an operator types:
  1. psql COPY of users, pre_auth_keys, nodes rows (ids kept) from the source database to the target's
  2. restart the target node
  3. sed the service in the tenant's Traefik file (or `set map` on HAProxy's runtime socket + the map file)
  4. wait for the proxy to load it (Traefik: the file provider's throttle; the blog's "hot reload")
  5. ss -K on the proxy host: every established connection on :80/:443 from the tenant's address
  6. delete the tenant's rows from the source database
Usage: hand_migration.py LAB_NAME TENANT TARGET
"""
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "sandbox", "real"))
import reallab  # noqa: E402


def sh(argv, **kw):
    return subprocess.run(argv, check=True, capture_output=True, text=True, **kw)


def main():
    name, tenant, target = sys.argv[1:4]
    lab = reallab.Lab(name)
    lab.load()
    t = lab.info["tenants"][tenant]
    source = t["home"]
    pg, psql = lab.info["pg"], reallab.pg_bin("psql")
    base = [psql, "-h", pg, "-U", "postgres", "-v", "ON_ERROR_STOP=1", "-qAt"]
    uid = f"(SELECT id FROM users WHERE name = '{tenant}')"
    for table, where in (("users", f"name = '{tenant}'"), ("pre_auth_keys", f"user_id IN {uid}"),
                         ("nodes", f"user_id IN {uid}")):
        out = sh(base + ["-d", f"hs{source}", "-c", f"COPY (SELECT * FROM {table} WHERE {where}) TO STDOUT"]).stdout
        sh(base + ["-d", f"hs{target}", "-c", f"COPY {table} FROM STDIN"], input=out)
    lab.restart_node(target)
    if lab.info["edge"] == "traefik":
        f = lab.path("traefik", "dynamic", f"headshift-tenant-{tenant}.yml")
        sh(["sed", "-i", f"s/service: headscale-cluster{source}/service: headscale-cluster{target}/", f])
        time.sleep(1.0)
    else:
        h = lab.info["haproxy"]
        sh(["socat", "-", f"UNIX-CONNECT:{h['socket']}"], input=f"set map {h['map']} {t['host']} headscale-cluster{target}\n")
        sh(["sed", "-i", f"s/^{t['host']} .*/{t['host']} headscale-cluster{target}/", h["map"]])
    sh(["ip", "netns", "exec", lab.ns("dc"), "ss", "-K", "-t", "state", "established",
        f"( ( sport = :80 or sport = :443 ) and dst {t['address']} )"])
    sh(base + ["-d", f"hs{source}", "-c", f"DELETE FROM nodes WHERE user_id IN {uid}; "
               f"DELETE FROM pre_auth_keys WHERE user_id IN {uid}; DELETE FROM users WHERE name = '{tenant}'"])


if __name__ == "__main__":
    main()
