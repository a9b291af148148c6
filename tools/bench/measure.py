"""What every bench script measures a process with: wall time from spawn to exit, with its
output discarded, and (optionally) its peak RSS from /usr/bin/time (the whole process tree,
as `time -v` reports; a child spawned straight from Python would be charged Python's own
pages). `python3 tools/bench/X.py` puts this folder on the path, so the scripts import it."""
import os
import time

DEVNULL = os.open(os.devnull, os.O_WRONLY)


def wall_ms(argv):
    """Wall ms of argv, stdout and stderr discarded; a failure stops the bench loudly."""
    start = time.perf_counter_ns()
    actions = [(os.POSIX_SPAWN_DUP2, DEVNULL, 1), (os.POSIX_SPAWN_DUP2, DEVNULL, 2)]
    pid = os.posix_spawnp(argv[0], argv, os.environ, file_actions=actions)
    _, status, _ = os.wait4(pid, 0)
    elapsed = (time.perf_counter_ns() - start) / 1e6
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"failed: {' '.join(argv)}")
    return elapsed


def wall_ms_and_rss_mib(argv, rss_file):
    """(wall ms, peak RSS MiB) of argv; /usr/bin/time writes the RSS to rss_file."""
    elapsed = wall_ms(["/usr/bin/time", "-f", "%M", "-o", rss_file] + argv)
    with open(rss_file) as f:
        return elapsed, int(f.read().split()[-1]) / 1024
