"""Network plumbing as iproute2 sees it: namespaces, the root namespace's links, what runs in a namespace and
its /etc/netns/<ns>/ files. Plain functions on names; the Lab (lab.py) records what it made with them."""
import json
import os

from .commands import LabError, run

ALIAS_PREFIX = "headshift-lab:"  # ifalias of a lab's root-namespace link: headshift-lab:<prefix>


def namespaces():
    """Names of every network namespace (`ip netns list`)."""
    p = run(["ip", "netns", "list"], check=False)
    return [line.split()[0] for line in p.stdout.splitlines() if line.strip()]


def netns_exists(ns):
    return os.path.exists(f"/run/netns/{ns}")


def add_netns(ns):
    """A new namespace with its loopback up."""
    run(["ip", "netns", "add", ns])
    run(["ip", "-n", ns, "link", "set", "lo", "up"])


def netns_pids(ns):
    p = run(["ip", "netns", "pids", ns], check=False)
    return [int(x) for x in p.stdout.split()] if p.returncode == 0 else []


def root_links_of(prefix):
    """Root-namespace links whose ifalias says they belong to lab `prefix`."""
    p = run(["ip", "-j", "link", "show"], check=False)
    try:
        links = json.loads(p.stdout or "[]")
    except ValueError:
        return []
    return [link["ifname"] for link in links if link.get("ifalias") == ALIAS_PREFIX + prefix]


def link_exists(name, ns=None):
    return run((["ip", "-n", ns] if ns else ["ip"]) + ["link", "show", "dev", name], check=False).returncode == 0


def add_veth(a, b, a_ns=None, b_ns=None, alias=None):
    """A veth pair: end a in a_ns, end b in b_ns (None: the root namespace). alias: ifalias of a root end, so
    a sweep finds it with no state."""
    argv = ["ip", "link", "add", a] + (["netns", a_ns] if a_ns else []) + ["type", "veth", "peer", "name", b] + \
        (["netns", b_ns] if b_ns else [])
    run(argv)
    for name, ns in ((a, a_ns), (b, b_ns)):
        if alias and ns is None:
            run(["ip", "link", "set", "dev", name, "alias", alias])


def addr_up(dev, cidr, ns=None):
    """Address cidr on dev (in ns), and dev up."""
    ipn = ["ip", "-n", ns] if ns else ["ip"]
    run(ipn + ["addr", "add", cidr, "dev", dev])
    run(ipn + ["link", "set", dev, "up"])


def etc_dir(ns):
    return f"/etc/netns/{ns}"


def write_etc(ns, files):
    """/etc/netns/<ns>/<name> for each name -> text: `ip netns exec` bind-mounts them over /etc/<name>."""
    d = etc_dir(ns)
    os.makedirs(d, exist_ok=True)
    for name, text in files.items():
        with open(os.path.join(d, name), "w") as f:
            f.write(text)
    return d


def check_name(kind, name, limit):
    if len(name) > limit:
        raise LabError(f"{kind} name {name!r} is {len(name)} characters; the kernel allows {limit}")
    return name
