"""Peak RSS of a fresh local install, several builds alternating run by run.

Each run is `/usr/bin/time -f %M BINARY -q rotate --dir D` on a D that does not exist yet
(a fresh install of the default control plane in local mode, default key algorithm); the
builds take turns in every round, in rotating order, so load and page-cache state hit all
alike. Prints each build's median, range and the ratio of the medians against the first
build, and the load average (`/proc/loadavg`) before and after.

Usage: rss.py WORKDIR ROUNDS BINARY [BINARY ...]
"""
import os
import shutil
import statistics
import sys

import measure  # noqa: E402 (this folder, on the path when run as a script)

work, rounds, binaries = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
os.makedirs(work, exist_ok=True)
RSS = os.path.join(work, "rss")


def load():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


print(f"load average before: {load()}")
results = {b: [] for b in binaries}
for rnd in range(rounds):
    k = rnd % len(binaries)
    for binary in binaries[k:] + binaries[:k]:
        d = os.path.join(work, "D")
        shutil.rmtree(d, ignore_errors=True)
        _, mib = measure.wall_ms_and_rss_mib([binary, "-q", "rotate", "--dir", d], RSS)
        results[binary].append(mib)
print(f"load average after: {load()}")
print(f"{rounds} rounds, alternating\n")
print("| binary | size MB | median MiB | range MiB | / first |")
print("|---|---:|---:|---|---:|")
first = statistics.median(results[binaries[0]])
for binary, runs in results.items():
    med = statistics.median(runs)
    size = os.path.getsize(binary) / 1e6
    print(f"| {binary} | {size:.1f} | {med:.2f} | {min(runs):.2f}–{max(runs):.2f} | {med / first:.2f} |")
