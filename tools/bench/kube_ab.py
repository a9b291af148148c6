"""A/B of two kube_scale binaries (e.g. this tree's and a baseline built from an older
commit with the same profile), alternating run by run so load drift hits both alike.
Prints the median wall time of each step and the ratio new / old.

Usage: kube_ab.py NEW_BINARY OLD_BINARY PLANES ROUNDS
"""
import re
import statistics
import subprocess
import sys

new, old, planes, rounds = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
steps = ["install", "staged rotation, to", "unchanged rerun"]


def run(binary):
    out = subprocess.run([binary, planes, "16"], check=True, capture_output=True, text=True).stdout
    found = {}
    for line in out.splitlines():
        for step in steps:
            if line.startswith(f"| {step}"):
                cells = [c.strip() for c in line.strip("|").split("|")]
                found[step] = (float(re.match(r"[\d.]+", cells[1]).group()), cells[2])
    return found


results = {"new": [], "old": []}
for _ in range(rounds):
    results["new"].append(run(new))
    results["old"].append(run(old))
print(f"{planes} control planes, 16 at a time, {rounds} alternating rounds, medians")
print("| step | this tree ms | baseline ms | ratio | requests / plane (this tree) | (baseline) |")
print("|---|---:|---:|---:|---|---|")
for step in steps:
    n = statistics.median(r[step][0] for r in results["new"])
    o = statistics.median(r[step][0] for r in results["old"])
    print(f"| {step} | {n:.0f} | {o:.0f} | {n / o:.2f} | {results['new'][0][step][1]} | {results['old'][0][step][1]} |")
