#!/usr/bin/python3
"""The `upgrade_command` of the rolling-upgrade test: records, when the playbook upgrades node CLUSTER,
how many devices that node serves right then, as the devices themselves report it (they must be 0: the
node was drained first).  upgrade_probe.py CLIENTS_JSON RECORD_JSONL CLUSTER"""
import json
import sys
import time

clients_file, record, cluster = sys.argv[1:4]
time.sleep(1.5)  # the devices' records are rewritten once a second: read one written after the drain
with open(clients_file) as f:
    clients = json.load(f)["clients"]
line = {"cluster": cluster, "at": time.time(),
        "devices_on_cluster": sum(1 for c in clients if c["state"] == "connected" and c["cluster"] == cluster),
        "devices_connected": sum(1 for c in clients if c["state"] == "connected")}
with open(record, "a") as f:
    f.write(json.dumps(line) + "\n")
print(json.dumps(line))
