"""Scaling curves: `certrotate bundle` time and peak memory with 10^3..10^6 tiny junk blocks
in OLD and with 10^3..1.7x10^5 tiny certificates in each input (Python `cryptography`
beside it), and a staged rotation against the fake API server at
10..1,000 control planes (time and requests). Writes a table to stdout, the figures to
WORKDIR/scaling.json and a plot to tools/bench/scaling.svg (hand-written SVG: no plotting
library needed).

Usage: scaling.py CERTROTATE_BINARY KUBE_SCALE_BINARY WORKDIR [--quick]
(tools/bench/scaling.sh builds both and calls this.)
"""
import json
import math
import os
import re
import statistics
import subprocess
import sys
import time

import measure  # noqa: E402 (this folder, on the path when run as a script)

certrotate, kube_scale, work = sys.argv[1], sys.argv[2], sys.argv[3]
quick = "--quick" in sys.argv
here = os.path.dirname(os.path.abspath(__file__))
os.makedirs(work, exist_ok=True)
NOW = 1780272000  # 2026-06-01T00:00:00Z
NOW_RFC = "2026-06-01T00:00:00Z"
RSS = os.path.join(work, "rss")


def run(argv):
    """(wall ms, peak RSS MiB) of argv, output discarded (see measure.py)."""
    return measure.wall_ms_and_rss_mib(argv, RSS)


def bundle_curve(kind):
    """kind "junk": NEW is one CA, OLD is N tiny junk blocks (58 bytes each: `AAAA` is no
    certificate), all scanned and skipped. kind "certs": NEW and OLD are N tiny CA
    certificates each (384 bytes of PEM; the first half of OLD expired)."""
    rows = []
    if kind == "junk":
        sizes = [1_000, 10_000, 100_000] if quick else [1_000, 10_000, 100_000, 1_000_000]
    else:
        # 170,000 tiny certificates (62 MiB) is the most under the CLI's 64 MiB per input.
        sizes = [1_000, 10_000, 100_000] if quick else [1_000, 10_000, 100_000, 170_000]
    for n in sizes:
        new, old = os.path.join(work, f"tiny-new-{n}.pem"), os.path.join(work, f"tiny-old-{n}.pem")
        if not os.path.exists(old):
            subprocess.run([sys.executable, os.path.join(here, "peers/make_tiny.py"), str(n), new, old, str(NOW)], check=True)
        if kind == "junk":
            first = open(new, "rb").read().split(b"-----END CERTIFICATE-----\n")[0]
            new = os.path.join(work, "one-ca.pem")
            with open(new, "wb") as f:
                f.write(first + b"-----END CERTIFICATE-----\n")
            old = os.path.join(work, f"junk-{n}.pem")
            with open(old, "wb") as f:
                f.write(b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n" * n)
        input_mib = (os.path.getsize(new) + os.path.getsize(old)) / 2**20
        ours_argv = [certrotate, "bundle", new, old, "--now", NOW_RFC, "-q"]
        peer = "peers/merge_python_skip.py" if kind == "junk" else "peers/merge_python.py"
        peer_argv = [sys.executable, os.path.join(here, peer), new, old, str(NOW)]
        rounds = 7 if n <= 10_000 else 5 if n <= 100_000 else 3
        ours, theirs = [], []
        for _ in range(rounds):  # alternating, so drift hits both alike
            ours.append(run(ours_argv))
            theirs.append(run(peer_argv))
        row = {
            "kind": kind,
            "blocks": n,
            "input_mib": input_mib,
            "certrotate_ms": statistics.median(t for t, _ in ours),
            "certrotate_rss_mib": statistics.median(m for _, m in ours),
            "python_ms": statistics.median(t for t, _ in theirs),
            "python_rss_mib": statistics.median(m for _, m in theirs),
            "rounds": rounds,
        }
        rows.append(row)
        print(json.dumps(row), flush=True)
    return rows


def rotation_curve():
    rows = []
    planes_list = [10, 30, 100, 300] if quick else [10, 30, 100, 300, 1000]
    for planes in planes_list:
        runs = []
        for _ in range(1 if planes >= 1000 and quick else 3):
            out = subprocess.run([kube_scale, str(planes), "16"], check=True, capture_output=True, text=True).stdout
            runs.append(json.loads(next(l for l in out.splitlines() if l.startswith("{"))))
        steps = {}
        for name in runs[0]["steps"]:
            ms = statistics.median(r["steps"][name]["ms"] for r in runs)
            steps[name] = dict(runs[0]["steps"][name], ms=ms)
        row = {"planes": planes, "runs": len(runs), "steps": steps}
        rows.append(row)
        print(json.dumps(row), flush=True)
    return rows


def svg(junk, certs, rotation, path):
    """Two log-log panels: time (and memory) against size, with a slope-1 guide."""
    W, H, M = 460, 320, 56
    out = ['<svg xmlns="http://www.w3.org/2000/svg" width="940" height="340" font-family="sans-serif" font-size="11">']

    def panel(x0, title, xlabel, series, ylabel):
        xs = [x for _, pts, _ in series for x, _ in pts]
        ys = [y for _, pts, _ in series for _, y in pts if y > 0]
        lx0, lx1 = math.floor(math.log10(min(xs))), math.ceil(math.log10(max(xs)))
        ly0, ly1 = math.floor(math.log10(min(ys))), math.ceil(math.log10(max(ys)))
        px = lambda x: x0 + M + (math.log10(x) - lx0) / (lx1 - lx0) * (W - M - 10)
        py = lambda y: H - M + 20 - (math.log10(y) - ly0) / (ly1 - ly0) * (H - M - 10)
        out.append(f'<text x="{x0 + W / 2}" y="14" text-anchor="middle" font-weight="bold">{title}</text>')
        for e in range(lx0, lx1 + 1):
            out.append(f'<line x1="{px(10**e)}" y1="{py(10**ly0)}" x2="{px(10**e)}" y2="{py(10**ly1)}" stroke="#ddd"/>')
            out.append(f'<text x="{px(10**e)}" y="{py(10**ly0) + 14}" text-anchor="middle">1e{e}</text>')
        for e in range(ly0, ly1 + 1):
            out.append(f'<line x1="{px(10**lx0)}" y1="{py(10**e)}" x2="{px(10**lx1)}" y2="{py(10**e)}" stroke="#ddd"/>')
            out.append(f'<text x="{px(10**lx0) - 4}" y="{py(10**e) + 4}" text-anchor="end">1e{e}</text>')
        out.append(f'<text x="{x0 + W / 2}" y="{H + 8}" text-anchor="middle">{xlabel}</text>')
        out.append(f'<text x="{x0 + 12}" y="{H / 2}" transform="rotate(-90 {x0 + 12} {H / 2})" text-anchor="middle">{ylabel}</text>')
        for i, (label, pts, colour) in enumerate(series):
            pts = [(x, y) for x, y in pts if y > 0]
            d = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in pts)
            dash = ' stroke-dasharray="4 3"' if "MiB" in label or "requests" in label else ""
            out.append(f'<polyline points="{d}" fill="none" stroke="{colour}" stroke-width="1.8"{dash}/>')
            for x, y in pts:
                out.append(f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="2.5" fill="{colour}"/>')
            out.append(f'<text x="{x0 + M + 8}" y="{34 + 13 * i}" fill="{colour}">{label}</text>')
        # Linear growth guide through the first point of the first series.
        x1, y1 = series[0][1][0]
        x2 = xs[-1] if xs else x1
        out.append(f'<line x1="{px(x1)}" y1="{py(y1)}" x2="{px(max(xs))}" y2="{py(y1 * max(xs) / x1)}" stroke="#999" stroke-dasharray="1 3"/>')
        out.append(f'<text x="{x0 + W - 12}" y="{H - M + 8}" text-anchor="end" fill="#999">dotted: linear from the first point</text>')

    panel(0, "certrotate bundle NEW OLD", "blocks in OLD (junk) / in each input (certificates)", [
        ("junk blocks: ms", [(r["blocks"], r["certrotate_ms"]) for r in junk], "#1f77b4"),
        ("junk blocks: Python ms", [(r["blocks"], r["python_ms"]) for r in junk], "#ff7f0e"),
        ("junk blocks: peak RSS MiB", [(r["blocks"], r["certrotate_rss_mib"]) for r in junk], "#1f77b4"),
        ("junk blocks: input MiB", [(r["blocks"], r["input_mib"]) for r in junk], "#2ca02c"),
        ("certificates: ms", [(r["blocks"], r["certrotate_ms"]) for r in certs], "#17becf"),
        ("certificates: Python ms", [(r["blocks"], r["python_ms"]) for r in certs], "#bcbd22"),
    ], "ms / MiB")
    step = "staged rotation, to the end"
    panel(470, "staged rotation against the fake API server", "control planes (16 at a time)", [
        ("rotation wall ms", [(r["planes"], r["steps"][step]["ms"]) for r in rotation], "#d62728"),
        ("install wall ms", [(r["planes"], r["steps"]["install"]["ms"]) for r in rotation], "#9467bd"),
        ("rotation requests (total)", [(r["planes"], r["steps"][step]["requests"] * r["planes"]) for r in rotation], "#d62728"),
    ], "ms / requests")
    out.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")


junk = bundle_curve("junk")
certs = bundle_curve("certs")
bundle = junk + certs
rotation = rotation_curve()
with open(os.path.join(work, "scaling.json"), "w") as f:
    json.dump({"bundle": bundle, "rotation": rotation}, f, indent=2)
svg(junk, certs, rotation, os.path.join(here, "scaling.svg"))

print("\n| OLD | blocks | input MiB | certrotate ms | peak RSS MiB | RSS / input | Python ms | Python RSS MiB | time ratio | µs per block |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
for r in bundle:
    what = "tiny junk blocks (NEW: 1 CA)" if r["kind"] == "junk" else "tiny CA certificates (NEW: as many)"
    print(f"| {what} | {r['blocks']:,} | {r['input_mib']:.1f} | {r['certrotate_ms']:.1f} | {r['certrotate_rss_mib']:.1f} | "
          f"{r['certrotate_rss_mib'] / r['input_mib']:.2f} | {r['python_ms']:.1f} | {r['python_rss_mib']:.1f} | "
          f"{r['certrotate_ms'] / r['python_ms']:.3f} | {r['certrotate_ms'] / r['blocks'] * 1000:.2f} |")
print("\n| control planes | install ms | rotation ms | rerun ms | rotation requests / plane | rotation ms per plane |")
print("|---:|---:|---:|---:|---|---:|")
for r in rotation:
    s = r["steps"]
    rot = s["staged rotation, to the end"]
    print(f"| {r['planes']:,} | {s['install']['ms']:.0f} | {rot['ms']:.0f} | {s['unchanged rerun']['ms']:.0f} | "
          f"{rot['requests']:.2f} ({rot['methods']}) | {rot['ms'] / r['planes']:.2f} |")
