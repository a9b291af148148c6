"""A/B of two certrotate binaries on the peers' workloads, alternating run by run.

The workloads of tools/bench/peers.py (the full set as ECDSA P-256 and RSA 2048 through
`rotate --dir`, and `bundle` of 10,000 new + 10,000 old certificates), each binary once
per round, in alternating order, so drift and load hit both alike. Prints medians, the
ratio B / A and each binary's median peak RSS. For build settings that must not cost run
time (a profile's opt-level, LTO): build A and B, then compare them in one session.

Usage: binary_ab.py A_BINARY B_BINARY WORKDIR ROUNDS
"""
import os
import shutil
import statistics
import subprocess
import sys
import time

import measure  # noqa: E402 (this folder, on the path when run as a script)

a, b, work, rounds = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
here = os.path.dirname(os.path.abspath(__file__))
os.makedirs(work, exist_ok=True)
NOW = 1780272000  # 2026-06-01T00:00:00Z, as in peers.py
RSS = os.path.join(work, "rss")


def run(argv):
    """(wall ms, peak RSS MiB) of argv, output discarded (see measure.py)."""
    return measure.wall_ms_and_rss_mib(argv, RSS)


new = os.path.join(work, "new.pem")
old = os.path.join(work, "old.pem")
if not os.path.exists(old):
    subprocess.run(
        [sys.executable, os.path.join(here, "peers/make_bundles.py"), "10000", new, old, str(NOW)],
        check=True,
    )


def workloads(binary, tag):
    out = os.path.join(work, f"set-{tag}")
    return {
        "full set ecdsa-p256": (out, [binary, "-q", "rotate", "--dir", out, "--key-algorithm", "ecdsa-p256"]),
        "full set rsa-2048": (out, [binary, "-q", "rotate", "--dir", out, "--key-algorithm", "rsa-2048"]),
        "merge 10k + 10k": (None, [binary, "bundle", new, old, "--now", "2026-06-01T00:00:00Z", "-q"]),
    }


results = {}
for rnd in range(rounds):
    order = [("A", a), ("B", b)] if rnd % 2 == 0 else [("B", b), ("A", a)]
    for name in workloads(a, "A"):
        for tag, binary in order:
            out, argv = workloads(binary, tag)[name]
            if out:
                shutil.rmtree(out, ignore_errors=True)
            results.setdefault(name, {}).setdefault(tag, []).append(run(argv))

print(f"A = {a}\nB = {b}\n{rounds} rounds, alternating\n")
print("| work | A median ms | B median ms | B / A | A RSS MiB | B RSS MiB |")
print("|---|---:|---:|---:|---:|---:|")
for name, tags in results.items():
    ma = statistics.median(t for t, _ in tags["A"])
    mb = statistics.median(t for t, _ in tags["B"])
    ra = statistics.median(m for _, m in tags["A"])
    rb = statistics.median(m for _, m in tags["B"])
    print(f"| {name} | {ma:.1f} | {mb:.1f} | {mb / ma:.2f} | {ra:.1f} | {rb:.1f} |")
