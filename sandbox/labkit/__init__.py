"""labkit: the lab toolkit the real-peer lab (sandbox/real), the fleet lab (tests/fleet) and the benchmarks
share: namespaces, veths, processes, /etc/netns files, wait helpers and a teardown that reports every error.
Import with sandbox/ on sys.path (`import labkit`); `python3 sandbox/labkit --help` for the command line."""
from . import cgroups  # noqa: F401 - CPU limits (lab.add_cpu_limit)
from .commands import LabError, http_get, log, pg_bin, run, sys_bin, wait_for, write_secret  # noqa: F401
from .lab import Lab, check_prefix, wait_exited  # noqa: F401
from .network import add_netns, addr_up, namespaces, netns_exists, netns_pids, write_etc  # noqa: F401
from .processes import comm, pid_alive, stop_pid, stop_pids  # noqa: F401
