"""One lab's resources under one prefix: its namespaces (<prefix>-<what>), root-namespace veths
(<prefix><what>, ifalias headshift-lab:<prefix>), /etc/netns/<prefix>-*/ files, processes (pidfiles
<prefix>.<key>.pid), CPU-limit cgroups (headshift-lab-<prefix>-<what>, cgroups.py) and state dir (default
/tmp/headshift-lab-<prefix>), every one recorded in the ledger as it is made. The real-peer lab, the fleet lab
and the benchmarks build on this class.

Contract:
  begin()     sweeps leftovers of dead labs of this prefix (a ledger whose processes no longer run; namespaces,
              aliased links, /etc/netns dirs, cgroups with the prefix and no live ledger), refuses (LabError) a
              live lab of the prefix unless replace=True (then takes it down), and starts an empty ledger and
              state dir.
  teardown()  removes everything recorded, in order (processes by phase, leftovers in the namespaces,
              teardown commands, cgroups, links, namespaces, /etc/netns dirs, state dir, ledger), and returns one
              line per error: a resource that was already gone (removed behind the lab's back) or that could not
              be removed. It never stops at an error.  down(): teardown() that prints each error and raises.
Requires root. Not thread-safe; processes of one prefix serialize ledger writes with an flock."""
import json
import os
import shutil

from . import cgroups, network
from .commands import LabError, log, run
from .ledger import Ledger
from .processes import netns_leftovers, pid_alive, spawn, start_time, stop_pids


def check_prefix(prefix, limit=12):
    if not prefix or len(prefix) > limit or not all(c.isdigit() or c.islower() or c == "-" for c in prefix) \
            or not prefix[0].isalpha():
        raise LabError(f"lab prefix {prefix!r}: use 1-{limit} lower-case letters, digits or '-', starting with a "
                       "letter (it names namespaces and veths)")
    return prefix


class Lab:
    def __init__(self, prefix, state_dir=None, tool="lab"):
        self.prefix = check_prefix(prefix)
        self.dir = os.path.abspath(state_dir or f"/tmp/headshift-lab-{prefix}")
        self.tool = tool
        self.ledger = Ledger(prefix)
        self.info = {}

    # ---- names and state ---------------------------------------------------------------------------
    def ns(self, what):
        return f"{self.prefix}-{what}"

    def link(self, what):
        return network.check_name("veth", f"{self.prefix}{what}", 15)

    def path(self, *parts):
        return os.path.join(self.dir, *parts)

    def log(self, msg):
        log(self.tool, msg)

    def save(self):
        tmp = self.path("lab.json.tmp")
        with open(tmp, "w") as f:
            json.dump(self.info, f, indent=1)
        os.replace(tmp, self.path("lab.json"))

    def load(self):
        try:
            with open(self.path("lab.json")) as f:
                self.info = json.load(f)
        except FileNotFoundError:
            raise LabError(f"no lab {self.prefix} at {self.dir} (lab.json missing): bring it up first") from None
        return self.info

    # ---- begin -------------------------------------------------------------------------------------
    def begin(self, replace=False, subdirs=("logs",)):
        if os.geteuid() != 0:
            raise LabError("a lab needs root (network namespaces, veths): run it as root")
        running = self.ledger.running()
        if running:
            if not replace:
                raise LabError(f"lab {self.prefix} is up ({', '.join(running[:5])} running): take it down first")
            self.log(f"taking down the running lab {self.prefix} first")
            self.down()
        for e in self.sweep():
            self.log(f"sweeping a dead lab {self.prefix}: {e}")
        os.makedirs(self.dir, exist_ok=True)
        for d in subdirs:
            os.makedirs(self.path(d), exist_ok=True)
        self.ledger.create(self.dir)
        self.info = {}

    def is_live(self):
        return bool(self.ledger.running())

    def sweep(self):
        """Removes what dead labs of this prefix left; returns the problems met (already-gone resources,
        failures), which the caller reports. Never touches a live lab."""
        if self.is_live():
            return []
        problems = []
        if self.ledger.exists():
            self.log(f"sweeping the dead lab {self.prefix} (none of its processes runs; state {self.dir})")
            problems += self._teardown(self.ledger.read())
        return problems + self._sweep_names()

    def _sweep_names(self):
        """Namespaces, aliased root links and /etc/netns dirs with the prefix, and the state dir, that no
        ledger records (a lab whose ledger is gone, or something made outside it)."""
        stray = [n for n in network.namespaces() if n.startswith(self.prefix + "-")]
        links = network.root_links_of(self.prefix)
        etc = [os.path.join("/etc/netns", n) for n in (os.listdir("/etc/netns") if os.path.isdir("/etc/netns") else [])
               if n.startswith(self.prefix + "-")]
        groups = cgroups.lab_cgroups(self.prefix)
        state = [self.dir] if os.path.isdir(self.dir) else []
        if not (stray or links or etc or groups or state):
            return []
        self.log(f"sweeping leftovers of {self.prefix}: " + ", ".join(stray + links + etc + groups + state))
        return self._teardown({"namespaces": stray, "links": links, "etc": etc, "cgroups": groups,
                               "state_dir": state[0] if state else None}, strict=False)

    # ---- resources ---------------------------------------------------------------------------------
    def add_netns(self, what):
        """Namespace <prefix>-<what> (loopback up), recorded."""
        name = self.ns(what)
        network.add_netns(name)
        self.ledger.add("namespaces", name)
        return name

    def add_veth(self, a, b, a_ns=None, b_ns=None):
        """A veth pair; an end in the root namespace (its ns None) must be named by self.link() and is recorded
        (with its ifalias); ends in the lab's namespaces go with them."""
        alias = network.ALIAS_PREFIX + self.prefix
        for name, ns in ((a, a_ns), (b, b_ns)):
            if ns is None and not name.startswith(self.prefix):
                raise LabError(f"root-namespace veth {name!r} must carry the lab prefix {self.prefix}")
        network.add_veth(a, b, a_ns, b_ns, alias=alias)
        for name, ns in ((a, a_ns), (b, b_ns)):
            if ns is None:
                self.ledger.add("links", name)

    def write_etc(self, ns, files):
        """/etc/netns/<ns>/ files (hosts, resolv.conf...) for a namespace of this lab, recorded."""
        if not ns.startswith(self.prefix + "-"):
            raise LabError(f"/etc/netns/{ns}: not a namespace of lab {self.prefix}")
        d = network.write_etc(ns, files)
        self.ledger.add("etc", d)
        return d

    def add_cpu_limit(self, what, cpus):
        """Cgroup headshift-lab-<prefix>-<what> limited to `cpus` CPUs, recorded; returns its path for
        spawn(cgroup=...). Made again (same path) if it exists."""
        path = cgroups.create(cgroups.cgroup_name(self.prefix, what), cpus)
        self.ledger.add("cgroups", path)
        return path

    def on_teardown(self, argv):
        """argv is run at teardown (after the processes stop), e.g. another tool's `down` for what it made."""
        self.ledger.add("commands", list(argv))

    def spawn(self, key, argv, netns=None, log_name=None, env=None, user=None, phase=0, log_path=None, cgroup=None):
        """Starts argv detached (see processes.spawn), log log_path or <state>/logs/<log_name or key>.log,
        pidfile <prefix>.<key>.pid. phase 1: stopped last at teardown (after everything in phase 0 and the
        namespaces' leftovers), e.g. a database the others write to. cgroup: a path from add_cpu_limit (the
        process runs in it from its start). Returns the Popen."""
        log_path = log_path or self.path("logs", (log_name or key) + ".log")
        p = spawn(argv, log_path, netns=netns, user=user, env=env, cwd=self.dir, cgroup=cgroup)
        self.ledger.record_pid(key, p.pid, start_time(p.pid), phase)
        return p

    def pid(self, key):
        rec = self.ledger.processes().get(key)
        return rec["pid"] if rec and pid_alive(rec["pid"], rec.get("started")) else None

    def stop(self, key, grace=5.0):
        """Stops process `key` (TERM, grace, KILL); LabError if it outlives that."""
        rec = self.ledger.processes().get(key)
        if rec and stop_pids([(rec["pid"], rec.get("started"))], grace=grace):
            raise LabError(f"process {key} (pid {rec['pid']}) did not stop")
        self.ledger.forget_pid(key)

    # ---- teardown ----------------------------------------------------------------------------------
    def teardown(self):
        errors = self._teardown(self.ledger.read()) if self.ledger.exists() else []
        return errors + self._sweep_names()

    def down(self, quiet=False):
        errors = self.teardown()
        for e in errors:
            self.log(f"teardown: {e}")
        if errors:
            raise LabError(f"lab {self.prefix}: {len(errors)} cleanup error(s) (above); the rest is removed")
        if not quiet:
            self.log(f"lab {self.prefix} is down")

    def _teardown(self, doc, strict=True):
        """strict: a recorded resource that is already gone is an error (it was removed behind the lab's back);
        a sweep by names (strict False) lists only what exists."""
        errors = []
        procs = self.ledger.processes()
        for phase in (0, 1):
            batch = {k: r for k, r in procs.items() if r.get("phase", 0) == phase}
            for pid in stop_pids([(r["pid"], r.get("started")) for r in batch.values()], grace=5 + 5 * phase):
                errors.append(f"process {[k for k, r in batch.items() if r['pid'] == pid][0]} (pid {pid}) "
                              "survived SIGKILL")
            if phase == 0:
                for ns in doc.get("namespaces", []):
                    for pid in netns_leftovers(ns):
                        errors.append(f"process {pid} in namespace {ns} survived SIGKILL")
        for argv in doc.get("commands", []):
            try:
                p = run(argv, check=False, timeout=120)
                if p.returncode != 0:
                    errors.append(f"{' '.join(argv)} exited {p.returncode}: {(p.stderr or '').strip()[-300:]}")
            except Exception as e:  # noqa: BLE001 - reported, the rest is still removed
                errors.append(f"{' '.join(argv)}: {e}")
        for path in doc.get("cgroups", []):
            if not cgroups.exists(path):
                if strict:
                    errors.append(f"cgroup {path} was already gone (removed outside the lab)")
                continue
            err = cgroups.remove(path)
            if err:
                errors.append(err)
        errors += _delete_each("veth", doc.get("links", []), network.link_exists, ["ip", "link", "del"], strict)
        errors += _delete_each("namespace", doc.get("namespaces", []), network.netns_exists, ["ip", "netns", "del"],
                               strict)
        for d in doc.get("etc", []):
            errors += _remove_tree(d, "/etc/netns dir", strict)
        if doc.get("state_dir"):
            errors += _remove_tree(doc["state_dir"], "state dir", strict)
        return errors + self._forget(doc)

    def _forget(self, doc):
        """Drops the ledger; what still exists (it could not be removed) stays recorded for the next sweep."""
        left_ns = [n for n in doc.get("namespaces", []) if network.netns_exists(n)]
        left_links = [n for n in doc.get("links", []) if network.link_exists(n)]
        left_groups = [p for p in doc.get("cgroups", []) if cgroups.exists(p)]
        if left_ns or left_links or left_groups:
            if self.ledger.exists():
                self.ledger.keep_only("namespaces", left_ns)
                self.ledger.keep_only("links", left_links)
                self.ledger.keep_only("cgroups", left_groups)
            return []
        try:
            self.ledger.remove()
        except OSError as e:
            return [f"ledger {self.ledger.dir}: {e}"]
        return []


def _delete_each(kind, names, exists, argv, strict):
    """argv + [name] for each name that exists; one error per name already gone (strict) or not deleted."""
    errors = []
    for name in names:
        if not exists(name):
            if strict:
                errors.append(f"{kind} {name} was already gone (removed outside the lab)")
            continue
        p = run(argv + [name], check=False)
        if p.returncode != 0 and exists(name):
            errors.append(f"{' '.join(argv)} {name}: {p.stderr.strip()}")
    return errors


def _remove_tree(path, what, strict):
    if not os.path.exists(path):
        return [f"{what} {path} was already gone (removed outside the lab)"] if strict else []
    errs = []
    shutil.rmtree(path, onerror=lambda fn, p, exc: errs.append(f"{what}: {fn.__name__} {p}: {exc[1]}"))
    return errs[:5] + ([f"{what}: {len(errs) - 5} more errors"] if len(errs) > 5 else [])


def wait_exited(popen):
    """For wait_for's give_up: a reason once the process has exited."""
    rc = popen.poll()
    return f"it exited with status {rc} (see its log)" if rc is not None else None
