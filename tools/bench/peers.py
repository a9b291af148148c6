"""Whole-process peer comparison, alternating tools round by round in one session.

Each run's wall time comes from perf_counter around spawn+wait, its peak RSS from
/usr/bin/time (the max RSS of the process tree, as `time -v` reports). Medians over the rounds,
and ratios against each peer measured in the same session.

Usage: peers.py CERTROTATE_BINARY WORKDIR ROUNDS
"""
import json
import os
import shutil
import statistics
import subprocess
import sys
import time

import measure  # noqa: E402 (this folder, on the path when run as a script)

certrotate, work, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3])
here = os.path.dirname(os.path.abspath(__file__))
os.makedirs(work, exist_ok=True)
NOW = 1780272000  # 2026-06-01T00:00:00Z: a pinned clock for the merge


RSS = os.path.join(work, "rss")


def run(argv):
    """(wall ms, peak RSS MiB) of argv, output discarded (see measure.py)."""
    return measure.wall_ms_and_rss_mib(argv, RSS)


def fullset(tool, alg, out):
    shutil.rmtree(out, ignore_errors=True)
    return {
        "certrotate": [certrotate, "-q", "rotate", "--dir", out, "--key-algorithm", alg],
        "openssl": ["bash", os.path.join(here, "peers/fullset_openssl.sh"), alg, out],
        "python": [sys.executable, os.path.join(here, "peers/fullset_python.py"), alg, out],
        "cfssl": ["bash", os.path.join(here, "peers/fullset_cfssl.sh"), alg, out],
    }[tool]


new = os.path.join(work, "new.pem")
old = os.path.join(work, "old.pem")
if not os.path.exists(old):
    subprocess.run([sys.executable, os.path.join(here, "peers/make_bundles.py"), "10000", new, old, str(NOW)], check=True)
now_rfc = "2026-06-01T00:00:00Z"
merge = {
    "certrotate": [certrotate, "bundle", new, old, "--now", now_rfc, "-q"],
    "python": [sys.executable, os.path.join(here, "peers/merge_python.py"), new, old, str(NOW)],
    "openssl": ["bash", "-c", f"openssl crl2pkcs7 -nocrl -certfile {new} | openssl pkcs7 -print_certs -noout"],
}

results = {}
for rnd in range(rounds):
    for alg in ["ecdsa-p256", "rsa-2048"]:
        for tool in ["certrotate", "openssl", "python", "cfssl"]:
            t, m = run(fullset(tool, alg, os.path.join(work, f"set-{tool}")))
            results.setdefault(f"full set {alg}", {}).setdefault(tool, []).append((t, m))
    for tool, argv in merge.items():
        t, m = run(argv)
        results.setdefault("merge 10k new + 10k old", {}).setdefault(tool, []).append((t, m))

summary = {}
print(f"| work | tool | median ms | peak RSS MiB (median) | certrotate / tool |")
print(f"|---|---|---:|---:|---:|")
for work_name, tools in results.items():
    ours = statistics.median(t for t, _ in tools["certrotate"])
    for tool, runs in tools.items():
        med = statistics.median(t for t, _ in runs)
        rss = statistics.median(m for _, m in runs)
        ratio = "" if tool == "certrotate" else f"{ours / med:.2f}"
        print(f"| {work_name} | {tool} | {med:.1f} | {rss:.1f} | {ratio} |")
        summary.setdefault(work_name, {})[tool] = {"median_ms": med, "peak_rss_mib": rss, "runs": len(runs)}
with open(os.path.join(work, "peers.json"), "w") as f:
    json.dump(summary, f, indent=2)
