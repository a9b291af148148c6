"""Reads a `cargo build --timings` report: the largest units, the critical path, and an
estimate of the build's wall time on an idle machine with N cores.

On a shared machine a unit's duration is inflated by the load, so the estimate scales every
duration by CPU / (sum of durations), CPU being the build's user + sys time (from
`/usr/bin/time`), then replays the units on N slots in dependency order, longest remaining
chain first, with cargo's metadata pipelining (a library may start once its dependencies'
metadata is written). Edges come from `cargo metadata` (run in the measured checkout, with
the same feature flags): a library waits for its build script's run and its dependencies,
a build script's run for its compilation and its dependencies' runs (`links`), a build
script for its build-dependencies.

Usage: build_timings.py cargo-timing.html [CPU_SECONDS [CORES]] [-- cargo metadata flags]
  e.g. build_timings.py /tmp/cold-run/cargo-timings/cargo-timing.html 245 2 -- --no-default-features
"""
import json
import re
import subprocess
import sys

args = sys.argv[1:]
meta_flags = []
if "--" in args:
    meta_flags = args[args.index("--") + 1:]
    args = args[: args.index("--")]
html = open(args[0]).read()
cpu = float(args[1]) if len(args) > 1 else None
cores = int(args[2]) if len(args) > 2 else 2

units = json.loads(re.search(r"const UNIT_DATA = (\[.*?\n\]);", html, re.S).group(1))
total = sum(u["duration"] for u in units)
m = re.search(r"Total time:</td><td>([^<]*)", html)
print(f"{len(units)} units, sum of durations {total:.1f} s, cargo's total {m.group(1) if m else '?'}")


def label(u):
    t = u["target"].strip()
    return f"{u['name']} {u['version']}" + (f" ({t})" if t else "")


print("largest units (duration as measured):")
for u in sorted(units, key=lambda u: -u["duration"])[:15]:
    print(f"  {u['duration']:7.1f} s  {label(u)}")

meta = json.loads(subprocess.run(
    ["cargo", "metadata", "--format-version", "1", "--filter-platform",
     subprocess.run(["rustc", "-vV"], capture_output=True, text=True, check=True)
     .stdout.split("host: ")[1].split()[0]] + meta_flags,
    capture_output=True, text=True, check=True).stdout)
packages = {p["id"]: (p["name"], p["version"]) for p in meta["packages"]}
deps = {}
for node in meta["resolve"]["nodes"]:
    d = deps.setdefault(packages[node["id"]], {"normal": set(), "build": set()})
    for dep in node["deps"]:
        for kind in dep["dep_kinds"]:
            if kind["kind"] is None:
                d["normal"].add(packages[dep["pkg"]])
            elif kind["kind"] == "build":
                d["build"].add(packages[dep["pkg"]])

U = {}
for u in units:
    t = u["target"].strip()
    kind = {"build-script": "bs", "build-script (run)": "run"}.get(t, "bin" if "bin" in t else "lib")
    U[((u["name"], u["version"]), kind)] = u


def metadata_at(u):
    for name, section in u.get("sections") or []:
        if name == "frontend":
            return section["end"]
    return u["duration"]


def requirements(node):
    """(unit, whole unit needed?) that `node` waits for."""
    key, kind = node
    out = []
    if kind in ("lib", "bin"):
        if (key, "run") in U:
            out.append(((key, "run"), True))
        if kind == "bin" and (key, "lib") in U:
            out.append(((key, "lib"), True))
        for d in deps.get(key, {}).get("normal", ()):
            if (d, "lib") in U:
                dep = U[(d, "lib")]
                whole = kind == "bin" or "proc-macro" in dep["target"] or not dep["sections"]
                out.append(((d, "lib"), whole))
    elif kind == "run":
        out.append(((key, "bs"), True))
        out.extend(((d, "run"), True) for d in deps.get(key, {}).get("normal", ()) if (d, "run") in U)
    elif kind == "bs":
        out.extend(((d, "lib"), True) for d in deps.get(key, {}).get("build", ()) if (d, "lib") in U)
    return out


R = {n: requirements(n) for n in U}
memo = {}


def finish(node, scale=1.0):
    """End of `node` on unlimited cores: (time, the unit it waited on last)."""
    if (node, scale) not in memo:
        best, via = 0.0, None
        for r, whole in R[node]:
            t = finish(r, scale)[0]
            if not whole:
                t -= (U[r]["duration"] - metadata_at(U[r])) * scale
            if t > best:
                best, via = t, r
        memo[(node, scale)] = (best + U[node]["duration"] * scale, via)
    return memo[(node, scale)]


sys.setrecursionlimit(10000)
end = max(U, key=lambda n: finish(n)[0])
chain, n = [], end
while n:
    chain.append(n)
    n = finish(n)[1]
print(f"critical path, durations as measured: {finish(end)[0]:.1f} s")
for n in reversed(chain):
    print(f"  {U[n]['duration']:6.1f} s  {label(U[n])}")

if cpu:
    scale = cpu / total
    print(f"critical path scaled to CPU ({scale:.2f} x): {finish(end, scale)[0]:.1f} s")
    prio = {n: finish(n, scale)[0] for n in U}
    whole_at, meta_at, running, pending, t = {}, {}, {}, set(U), 0.0
    while pending or running:
        ready = sorted(
            (n for n in pending if all(
                (r in whole_at and whole_at[r] <= t) if whole else (r in meta_at and meta_at[r] <= t)
                for r, whole in R[n])),
            key=lambda n: -prio[n])
        while ready and len(running) < cores:
            n = ready.pop(0)
            pending.discard(n)
            d = U[n]["duration"] * scale
            whole_at[n] = running[n] = t + d
            meta_at[n] = t + (metadata_at(U[n]) * scale if U[n]["sections"] else d)
        upcoming = [e for e in list(running.values()) + [meta_at[n] for n in running] if e > t]
        if not upcoming and not running:
            break
        t = min(upcoming) if upcoming else t
        for n in [n for n, e in running.items() if e <= t]:
            del running[n]
    print(f"{cores}-core idle estimate: {t:.1f} s (CPU / {cores} = {cpu / cores:.1f} s)")
