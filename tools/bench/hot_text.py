"""Writes certrotate-cli/hot-text.ld: the functions a local-mode run executes, laid out
together at the start of .text (the linker script that certrotate-cli's build.rs passes).

A run touches ~1 MB of functions spread over most of a 10-13 MB .text; the kernel maps
each touched page's aligned 64 KiB neighbourhood (fault-around), so the scattered 1 MB
costs ~6 MB of RSS. Listing those functions first in .text packs them into few pages.

Each BINARY (built with symbols: `release` or `dist` before stripping) runs the workloads
below under valgrind's callgrind; the functions executed in the binary are collected in
the order callgrind first met them (the fresh install's first), their hashes (`17h...E`),
v0 crate disambiguators, LTO suffixes (`.llvm.N`) and aws-lc's version prefix replaced by
`*`, so the patterns survive toolchain, dependency and profile changes (a renamed function
just falls back to the default layout). Generic functions keep their hash (see below).

Usage: hot_text.py WORKDIR BINARY [BINARY ...], with binaries in the default layout:

    CERTROTATE_HOT_TEXT=off cargo build --release -p certrotate-cli   # and --profile dist
    cp target/release/certrotate /tmp/rel; cp target/dist/certrotate /tmp/dist
    python3 tools/bench/hot_text.py /tmp/hot /tmp/rel /tmp/dist

(valgrind does not name the functions of a binary linked with the script.)
"""
import bisect
import os
import re
import shutil
import subprocess
import sys

work, binaries = sys.argv[1], sys.argv[2:]
here = os.path.dirname(os.path.abspath(__file__))
out = os.path.normpath(os.path.join(here, "..", "..", "certrotate-cli", "hot-text.ld"))
os.makedirs(work, exist_ok=True)
NOW = "1780272000"


def workloads(binary):
    d = os.path.join(work, "D")
    new, old = os.path.join(work, "new.pem"), os.path.join(work, "old.pem")
    if not os.path.exists(old):
        subprocess.run([sys.executable, os.path.join(here, "peers/make_bundles.py"), "100", new, old, NOW], check=True)
    return [
        (d, [binary, "-q", "rotate", "--dir", d]),  # fresh install, default algorithm
        (None, [binary, "-q", "rotate", "--dir", d, "--overwrite", "--wait", "--convergence-interval", "0"]),
        (None, [binary, "status", "--dir", d]),
        (None, [binary, "check", "--dir", d]),
        (d + "-rsa", [binary, "-q", "rotate", "--dir", d + "-rsa", "--key-algorithm", "rsa-2048"]),
        (None, [binary, "bundle", new, old, "--now", "2026-06-01T00:00:00Z", "-q"]),
    ]


def executed(callgrind_out, binary):
    """Mangled names of the functions of `binary` in a callgrind file, first seen first."""
    objects, functions, names, current = {}, {}, [], None
    name = os.path.basename(binary)
    with open(callgrind_out, errors="replace") as f:
        for line in f:
            m = re.match(r"(c?ob)=\((\d+)\)(?: (.*))?", line)
            if m:
                if m.group(3):
                    objects[m.group(2)] = m.group(3).strip()
                if m.group(1) == "ob":
                    current = objects[m.group(2)]
                continue
            m = re.match(r"(c?fn)=\((\d+)\)(?: (.*))?", line)
            if m:
                if m.group(3):
                    functions[m.group(2)] = m.group(3).strip()
                if m.group(1) == "fn" and current and os.path.basename(current) == name:
                    names.append((int(m.group(2)), functions[m.group(2)]))
    return [n for _, n in sorted(names)]


def unhashed(name):
    """`name` without what changes with the toolchain, a dependency or the profile: the
    legacy hash, the v0 crate disambiguator (std's symbols), the LTO suffix, aws-lc's
    version prefix."""
    name = re.sub(r"17h[0-9a-f]{16}E", "17h*E", name)
    name = re.sub(r"Cs[0-9A-Za-z]+_", "Cs*_", name)
    name = re.sub(r"^aws_lc_\d+_\d+_\d+_", "aws_lc_*_", name)
    return re.sub(r"\.llvm\.\d+$", "", name)


def symbols(binary):
    """(how many functions of `binary` share each hash-free name, sorted (address, name))."""
    listing = subprocess.run(["nm", "--defined-only", binary], capture_output=True, text=True, check=True)
    count, by_address = {}, []
    for line in listing.stdout.splitlines():
        fields = line.split()
        if len(fields) == 3 and fields[1] in "tTwW":
            key = unhashed(fields[2])
            count[key] = count.get(key, 0) + 1
            by_address.append((int(fields[0], 16), fields[2]))
    return count, sorted(by_address)


def name_at(table, address):
    """The function of `table` (sorted (address, name)) that holds `address`."""
    i = bisect.bisect_right(table, (address, "\U0010ffff")) - 1
    return table[i][1] if i >= 0 else None


tables = {b: symbols(b) for b in binaries}
patterns, seen = [], set()
# Workload by workload (the fresh install's functions first, together), each binary in turn.
for i in range(len(workloads(binaries[0]))):
    for binary in binaries:
        fresh, argv = workloads(binary)[i]
        if fresh:
            shutil.rmtree(fresh, ignore_errors=True)
        cg = os.path.join(work, f"callgrind.{i}")
        subprocess.run(
            ["valgrind", "--tool=callgrind", "--demangle=no", f"--callgrind-out-file={cg}"] + argv,
            check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        count, table = tables[binary]
        for n in executed(cg, binary):
            # valgrind names the functions of sections other than .text (a binary already
            # linked with this script: .text.hot) by address only.
            if n.startswith("0x"):
                n = name_at(table, int(n, 16))
            if not n or not re.fullmatch(r"[A-Za-z0-9_.$]+", n):
                continue
            # Generic functions: every instance has the same path and another hash, so a
            # name whose hash-free form is not unique in the binary keeps its hash (exact:
            # it goes stale with the toolchain or a dependency, and is then not moved).
            key = unhashed(n)
            p = key if count.get(key, 0) == 1 else n
            if ".llvm." in p:
                p = re.sub(r"\.llvm\.\d+$", "*", p)
            elif ".llvm." in n:
                p += "*"
            if p not in seen:
                seen.add(p)
                patterns.append(p)

with open(out, "w") as f:
    f.write("/* Generated by tools/bench/hot_text.py: the functions a local-mode run executes, first in\n"
            "   .text (see certrotate-cli/build.rs). Regenerate after large changes. */\n")
    f.write("SECTIONS\n{\n  .text.hot : {\n")
    for p in patterns:
        # `#[cold]` functions are in `.text.unlikely.NAME` sections.
        f.write(f"    *(.text.{p} .text.unlikely.{p})\n")
    f.write("  }\n}\nINSERT BEFORE .text;\n")
print(f"{len(patterns)} patterns -> {out}")
