#!/usr/bin/python3
"""scripts/demo --fleet: one tenant moved across three proxy hosts by real Ansible (playbooks/ansible).

Brings up the fleet lab (tests/fleet/fleetlab.py: 3 proxy hosts = network namespaces with their own sshd
and real HAProxy, the sandbox's stand-in headscale nodes and devices), runs migrate_tenant.yml in check
mode, then for real, and prints each host's route and what the devices saw. The lab is always taken down.
"""
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import fleetlab  # noqa: E402

ANSIBLE_DIR = os.path.join(os.path.dirname(os.path.dirname(HERE)), "playbooks", "ansible")


def say(msg):
    print(f"\n\033[1m== {msg}\033[0m", flush=True)


def show(lab):
    for h in lab.info["hosts"]:
        print(f"  {h}: " + ", ".join(f"{k.split('.')[0]} -> {v}" for k, v in sorted(lab.host_map(h).items())))
    for t, s in sorted(lab.summary()["tenants"].items()):
        print(f"  {t}: {s['clients']} devices, connected per cluster {s['connected_by_cluster']}, "
              f"disconnects {s['disconnects']}, rejections {s['rejections']}")


def playbook(lab, *args):
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ANSIBLE_DIR, "ansible.cfg"))
    argv = ["ansible-playbook", "-i", lab.info["inventory"], os.path.join(ANSIBLE_DIR, "migrate_tenant.yml")] + list(args)
    print("  $ " + " ".join(argv[:1] + ["-i", "inventory.yml", "migrate_tenant.yml"] + list(args)), flush=True)
    t0 = time.monotonic()
    p = subprocess.run(argv, env=env, text=True, capture_output=True)
    lines = p.stdout.splitlines()
    keep, in_msg = [], False
    for l in lines:  # task names, changes, failures, each host's report line and the recap
        if l.startswith(("TASK", "changed:", "fatal:", "p1 ", "p2 ", "p3 ")) or (l.startswith("ok:") and "=>" in l):
            keep.append(l)
        in_msg = l.startswith("    msg:") or (in_msg and l.startswith("        "))
        if in_msg:
            keep.append(l)
    print("\n".join("  " + l for l in keep[-60:]))
    print(f"  exit {p.returncode} in {time.monotonic() - t0:.1f} s")
    return p.returncode


def main():
    lab = fleetlab.FleetLab("demo")
    try:
        say("bringing up the fleet lab: 3 proxy hosts (sshd + HAProxy each), 3 tenants x 20 devices spread over them")
        lab.up(hosts=3, tenants=3, devices=20)
        show(lab)
        say("check mode: plan on the control host, dry runs on every proxy host (changes nothing)")
        playbook(lab, "-e", "tenant=hsa", "-e", "to=4", "--check")
        say("migrate hsa to node 4 across every proxy host")
        rc = playbook(lab, "-e", "tenant=hsa", "-e", "to=4")
        lab.wait_connected("hsa", "4", timeout=30)
        time.sleep(1.2)
        say("after: every host's route, and what the devices saw")
        show(lab)
        return rc
    finally:
        lab.down()


if __name__ == "__main__":
    sys.exit(main())
