"""Commands, waits and small lookups every lab uses: one error type (LabError), argv runs that say what failed,
bounded waits that name what never became ready, and where the system's and the real peers' binaries are."""
import os
import shutil
import subprocess
import sys
import time
import urllib.request


class LabError(RuntimeError):
    """A lab could not be made, used or taken down; the message names what and how to fix it."""


def log(tool, msg):
    print(f"{tool}: {msg}", file=sys.stderr, flush=True)


def run(argv, check=True, capture=True, timeout=60, env=None, input=None, cwd=None):
    """Runs argv (never through a shell). check: a non-zero exit raises LabError with the tail of stderr."""
    p = subprocess.run(argv, capture_output=capture, text=True, timeout=timeout, env=env, input=input, cwd=cwd)
    if check and p.returncode != 0:
        why = (p.stderr or "").strip() or (p.stdout or "").strip()
        raise LabError(f"{' '.join(argv)} exited {p.returncode}: {why[-800:]}")
    return p


def wait_for(what, fn, timeout, interval=0.1, give_up=None):
    """Calls fn until it returns a true value (returned) or timeout seconds pass (LabError naming `what` and
    fn's last exception). give_up: optional callable returning a reason to stop early (e.g. the process died)."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            v = fn()
            if v:
                return v
        except Exception as e:  # noqa: BLE001 - the condition is retried until the deadline
            last = e
        if give_up:
            reason = give_up()
            if reason:
                raise LabError(f"{what}: {reason}")
        time.sleep(interval)
    raise LabError(f"{what} not ready within {timeout:.0f} s" + (f" (last error: {last})" if last else ""))


def http_get(url, timeout=2.0, headers=None):
    req = urllib.request.Request(url, headers=headers or {})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return r.status, r.read()


def sys_bin(name, dirs=("/usr/sbin", "/usr/bin", "/usr/local/bin", "/usr/local/sbin")):
    found = shutil.which(name)
    if found:
        return found
    for d in dirs:
        if os.access(os.path.join(d, name), os.X_OK):
            return os.path.join(d, name)
    raise LabError(f"{name} not found: run scripts/setup")


def pg_bin(name):
    base = "/usr/lib/postgresql"
    if os.path.isdir(base):
        for v in sorted(os.listdir(base), reverse=True):
            p = os.path.join(base, v, "bin", name)
            if os.access(p, os.X_OK):
                return p
    raise LabError(f"PostgreSQL {name} not found: run scripts/setup (package postgresql)")


def write_secret(path, value):
    """Writes value to path, mode 0600 from the start, atomically; returns path."""
    fd = os.open(path + ".tmp", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(value)
    os.replace(path + ".tmp", path)
    return path
