"""Processes of a lab: liveness that survives pid reuse (a pid is the lab's only while its start time matches
the one recorded), stopping (TERM, a grace period, KILL), and what runs in a network namespace."""
import os
import pwd
import signal
import subprocess
import time

from . import cgroups


def start_time(pid):
    """The process's start time in clock ticks since boot (/proc/<pid>/stat field 22); None if it is gone or
    a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            rest = f.read().rsplit(") ", 1)[1].split()
    except (OSError, IndexError):
        return None
    if rest[0] in ("Z", "X"):
        return None
    return int(rest[19])


def pid_alive(pid, started=None):
    """True while pid runs (not a zombie) and, if started is given, is still the process started then."""
    if not pid:
        return False
    st = start_time(pid)
    return st is not None and (started is None or st == started)


def comm(pid):
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()
    except OSError:
        return ""


def stop_pids(pids, grace=5.0, sig=signal.SIGTERM):
    """Signals every pid at once, waits up to grace seconds for all, SIGKILLs the rest and waits 2 s more.
    pids: [pid] or [(pid, started)]. Returns the pids still alive after that (a process stuck in the kernel)."""
    procs = [p if isinstance(p, tuple) else (p, None) for p in pids if p]
    procs = [(p, s) for p, s in procs if pid_alive(p, s)]
    for p, _ in procs:
        try:
            os.kill(p, sig)
        except ProcessLookupError:
            pass
    for final in (False, True):
        deadline = time.monotonic() + (2.0 if final else grace)
        while time.monotonic() < deadline and any(pid_alive(p, s) for p, s in procs):
            time.sleep(0.05)
        left = [(p, s) for p, s in procs if pid_alive(p, s)]
        if not left or final:
            return [p for p, _ in left]
        for p, _ in left:
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass
    return []


def stop_pid(pid, grace=5.0, started=None):
    """stop_pids for one process; True if it is gone."""
    return not stop_pids([(pid, started)], grace=grace)


def spawn(argv, log_path, netns=None, user=None, env=None, cwd=None, cgroup=None):
    """Starts argv detached (own session, stdin /dev/null, stdout+stderr appended to log_path), inside netns
    and as user if given, in cgroup (a path, cgroups.py) from its first instruction if given; returns the
    Popen. `ip netns exec` (and the cgroup's shell) exec argv, so the pid is the program's."""
    full = (["ip", "netns", "exec", netns] if netns else []) + list(argv)
    if cgroup:
        full = cgroups.wrap(cgroup, full)
    e = dict(os.environ)
    e.update(env or {})
    ids = {}
    if user:
        # Popen switches the user itself (no runuser, which would stay the parent): the recorded pid is the
        # program's, so a lab killed hard leaves no orphan the pidfile does not name.
        pw = pwd.getpwnam(user)
        ids = {"user": pw.pw_uid, "group": pw.pw_gid, "extra_groups": []}
        e.update(HOME=pw.pw_dir, USER=user, LOGNAME=user)
    with open(log_path, "ab") as logf:
        return subprocess.Popen(full, stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True, env=e, cwd=cwd, **ids)


def netns_leftovers(ns, grace=2.0):
    """Stops whatever still runs in namespace ns; returns the pids that survived."""
    p = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True)
    pids = [int(x) for x in p.stdout.split()] if p.returncode == 0 else []
    return stop_pids(pids, grace=grace)
