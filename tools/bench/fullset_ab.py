"""The full set on disk, two certrotate builds and cfssl, alternating run by run in one session.

Each round runs, in turn, build A, build B and cfssl once on the envoy-gateway full set (the
same commands as tools/bench/peers.py, each into a fresh folder), so drift and other engineers'
load hit all three alike. Prints the median wall time of each and its ratio to cfssl's
median measured in the same session.

Usage: fullset_ab.py A_BINARY B_BINARY WORKDIR ROUNDS [ALG]   (ALG: ecdsa-p256 by default)
"""
import os
import shutil
import statistics
import sys
import time

import measure  # noqa: E402 (this folder, on the path when run as a script)

a, b, work, rounds = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
alg = sys.argv[5] if len(sys.argv) > 5 else "ecdsa-p256"
here = os.path.dirname(os.path.abspath(__file__))
os.makedirs(work, exist_ok=True)


def run(argv):
    """Wall ms of argv, output discarded (see measure.py)."""
    return measure.wall_ms(argv)


tools = {
    "A": lambda out: [a, "-q", "rotate", "--dir", out, "--key-algorithm", alg],
    "B": lambda out: [b, "-q", "rotate", "--dir", out, "--key-algorithm", alg],
    "cfssl": lambda out: ["bash", os.path.join(here, "peers/fullset_cfssl.sh"), alg, out],
}
times = {name: [] for name in tools}
for _ in range(rounds):
    for name, argv in tools.items():
        out = os.path.join(work, f"set-{name}")
        shutil.rmtree(out, ignore_errors=True)
        times[name].append(run(argv(out)))

cfssl = statistics.median(times["cfssl"])
print(f"full set {alg}, {rounds} alternating rounds in {work}")
print("| build | median ms | min ms | max ms | / cfssl |")
print("|---|---:|---:|---:|---:|")
for name, runs in times.items():
    med = statistics.median(runs)
    label = {"A": f"A {a}", "B": f"B {b}", "cfssl": "cfssl"}[name]
    print(f"| {label} | {med:.1f} | {min(runs):.1f} | {max(runs):.1f} | {med / cfssl:.2f} |")
