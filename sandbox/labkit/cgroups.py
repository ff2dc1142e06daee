"""CPU limits for a lab's processes: one cgroup per limit, named headshift-lab-<prefix>-<what>, directly under
the machine's cpu controller (cgroup v1: the hierarchy mounted with the `cpu` option, limit in
cpu.cfs_quota_us / cpu.cfs_period_us; cgroup v2: the unified mount whose cgroup.controllers lists `cpu`, limit
in cpu.max). A process is put into the cgroup before it execs (wrap()), so even its first instruction is
limited, and a restarted process goes back into the same cgroup (the cgroup outlives its processes until
remove()). The Lab records each cgroup in its ledger; teardown removes it once its processes are gone.
Plain functions; requires root (writes under /sys/fs/cgroup)."""
import errno
import os
import time

from .commands import LabError

PERIOD_US = 100000  # the kernel's default CFS period (100 ms)
NAME_PREFIX = "headshift-lab-"


def cgroup_name(prefix, what):
    return f"{NAME_PREFIX}{prefix}-{what}"


def cpu_hierarchy(mounts="/proc/self/mounts"):
    """(version, mountpoint) of the cpu controller: v1 if a cgroup (v1) hierarchy carries `cpu`, else v2 if the
    unified hierarchy offers `cpu`. LabError if neither does."""
    v2 = None
    try:
        with open(mounts) as f:
            lines = f.read().splitlines()
    except OSError as e:
        raise LabError(f"cannot read {mounts}: {e}") from None
    for line in lines:
        parts = line.split()
        if len(parts) < 4:
            continue
        fstype, point, opts = parts[2], parts[1], parts[3].split(",")
        if fstype == "cgroup" and "cpu" in opts:
            return 1, point
        if fstype == "cgroup2" and v2 is None:
            try:
                with open(os.path.join(point, "cgroup.controllers")) as f:
                    if "cpu" in f.read().split():
                        v2 = point
            except OSError:
                continue
    if v2:
        return 2, v2
    raise LabError("no cgroup cpu controller: neither a cgroup v1 hierarchy with `cpu` nor a cgroup2 mount offering "
                   "`cpu` (mount one, or run without --cpu-limit)")


def create(name, cpus):
    """Makes (or reuses) cgroup `name` limited to `cpus` CPUs (e.g. 0.25: a quarter of one core); returns its
    path. LabError naming the file when the kernel refuses."""
    if not 0.01 <= cpus <= 64:
        raise LabError(f"CPU limit {cpus}: use 0.01..64 CPUs")
    version, root = cpu_hierarchy()
    path = os.path.join(root, name)
    quota = int(round(cpus * PERIOD_US))
    try:
        if version == 2:
            # The controller must be enabled for the root's children (allowed at the root with processes in it).
            with open(os.path.join(root, "cgroup.subtree_control")) as f:
                if "cpu" not in f.read().split():
                    _write(os.path.join(root, "cgroup.subtree_control"), "+cpu")
        os.makedirs(path, exist_ok=True)
        if version == 1:
            _write(os.path.join(path, "cpu.cfs_period_us"), str(PERIOD_US))
            _write(os.path.join(path, "cpu.cfs_quota_us"), str(quota))
        else:
            _write(os.path.join(path, "cpu.max"), f"{quota} {PERIOD_US}")
    except OSError as e:
        raise LabError(f"cgroup {path}: {e.strerror} ({e.filename}): a CPU limit needs root and a writable cgroup "
                       "cpu controller") from None
    return path


def limit_of(path):
    """The CPUs a cgroup allows (None: unlimited), read back from the kernel."""
    try:
        if os.path.exists(os.path.join(path, "cpu.max")):
            with open(os.path.join(path, "cpu.max")) as f:
                quota, period = f.read().split()
            return None if quota == "max" else int(quota) / int(period)
        with open(os.path.join(path, "cpu.cfs_quota_us")) as f:
            quota = int(f.read())
        with open(os.path.join(path, "cpu.cfs_period_us")) as f:
            period = int(f.read())
        return None if quota < 0 else quota / period
    except (OSError, ValueError):
        return None


def wrap(path, argv):
    """argv, run so that it enters cgroup `path` before it execs (the shell writes its own pid, then execs
    argv: the pid stays the program's)."""
    return ["/bin/sh", "-c", 'echo $$ > "$0/cgroup.procs" && exec "$@"', path] + list(argv)


def pids(path):
    try:
        with open(os.path.join(path, "cgroup.procs")) as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        return []


def contains(path, pid):
    return pid in pids(path)


def exists(path):
    return os.path.isdir(path)


def remove(path, wait=5.0):
    """rmdir of the cgroup (its processes must be gone; a process that just died may take a moment to leave).
    Returns None, or the error text."""
    deadline = time.monotonic() + wait
    while True:
        try:
            os.rmdir(path)
            return None
        except OSError as e:
            if e.errno == errno.ENOENT:
                return None
            if e.errno != errno.EBUSY or time.monotonic() >= deadline:
                left = pids(path)
                return f"rmdir {path}: {e.strerror}" + (f" (processes {left} still in it)" if left else "")
        time.sleep(0.1)


def lab_cgroups(prefix):
    """Paths of the cgroups named for lab `prefix` (for a sweep by names); [] without a cpu controller."""
    try:
        _, root = cpu_hierarchy()
    except LabError:
        return []
    start = cgroup_name(prefix, "")
    try:
        return [os.path.join(root, n) for n in sorted(os.listdir(root))
                if n.startswith(start) and os.path.isdir(os.path.join(root, n))]
    except OSError:
        return []


def _write(path, text):
    with open(path, "w") as f:
        f.write(text)
