"""What a lab made, kept where it outlives the lab's driver and its state dir: /run/headshift-labs/<prefix>/
(ledger.json: namespaces, root links, /etc/netns dirs, cgroups, state dir, teardown commands; one <prefix>.<key>.pid per
process: pid, start time, stop phase). /run is emptied at boot, as the namespaces are. Writers of one prefix
serialize on an flock of <run>/lock; readers see whole files (atomic replace)."""
import fcntl
import json
import os

from .processes import pid_alive

RUN_ROOT = os.environ.get("HEADSHIFT_LAB_RUN", "/run/headshift-labs")
LISTS = ("namespaces", "links", "etc", "commands", "cgroups")


class Ledger:
    def __init__(self, prefix):
        self.prefix = prefix
        self.dir = os.path.join(RUN_ROOT, prefix)

    def exists(self):
        return os.path.exists(os.path.join(self.dir, "ledger.json"))

    def read(self):
        """The ledger ({} if there is none or it is unreadable: a sweep then goes by names alone)."""
        try:
            with open(os.path.join(self.dir, "ledger.json")) as f:
                doc = json.load(f)
        except (OSError, ValueError):
            return {}
        for k in LISTS:
            doc.setdefault(k, [])
        return doc

    def create(self, state_dir):
        os.makedirs(self.dir, mode=0o700, exist_ok=True)
        self._write({"prefix": self.prefix, "state_dir": state_dir, **{k: [] for k in LISTS}})

    def add(self, kind, item):
        """Appends item to list `kind` (one of LISTS) unless it is there."""
        with self._locked():
            doc = self.read()
            if item not in doc[kind]:
                doc[kind].append(item)
                self._write(doc)

    def keep_only(self, kind, items):
        with self._locked():
            doc = self.read()
            doc[kind] = [x for x in doc[kind] if x in items]
            self._write(doc)

    # ---- processes -----------------------------------------------------------------------------------
    def pidfile(self, key):
        return os.path.join(self.dir, f"{self.prefix}.{key}.pid")

    def record_pid(self, key, pid, started, phase):
        tmp = self.pidfile(key) + ".tmp"
        with open(tmp, "w") as f:
            json.dump({"key": key, "pid": pid, "started": started, "phase": phase}, f)
        os.replace(tmp, self.pidfile(key))

    def forget_pid(self, key):
        try:
            os.unlink(self.pidfile(key))
        except FileNotFoundError:
            pass

    def processes(self):
        """key -> {pid, started, phase} of every pidfile."""
        out = {}
        try:
            names = os.listdir(self.dir)
        except OSError:
            return out
        for n in names:
            if n.startswith(self.prefix + ".") and n.endswith(".pid"):
                try:
                    with open(os.path.join(self.dir, n)) as f:
                        rec = json.load(f)
                    out[rec["key"]] = rec
                except (OSError, ValueError, KeyError):
                    continue
        return out

    def running(self):
        """Keys of the recorded processes that still run (same pid and start time)."""
        return sorted(k for k, r in self.processes().items() if pid_alive(r["pid"], r.get("started")))

    def remove(self):
        for n in os.listdir(self.dir) if os.path.isdir(self.dir) else []:
            os.unlink(os.path.join(self.dir, n))
        if os.path.isdir(self.dir):
            os.rmdir(self.dir)

    # ---- internals -----------------------------------------------------------------------------------
    def _write(self, doc):
        tmp = os.path.join(self.dir, "ledger.json.tmp")
        with open(tmp, "w") as f:
            json.dump(doc, f, indent=1)
        os.replace(tmp, os.path.join(self.dir, "ledger.json"))

    def _locked(self):
        return _Flock(os.path.join(self.dir, "lock"))


class _Flock:
    def __init__(self, path):
        self.path = path
        self.fd = None

    def __enter__(self):
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc):
        fcntl.flock(self.fd, fcntl.LOCK_UN)
        os.close(self.fd)
