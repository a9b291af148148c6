#!/usr/bin/env bash
# Scaling curves (BENCHMARKS.md, "Scaling"): builds the release binary and the kube_scale
# bench, then runs tools/bench/scaling.py, which writes the tables and tools/bench/scaling.svg.
# `--quick` stops at 10^5 certificates and 300 control planes.
set -euo pipefail
cd "$(dirname "$0")/../.."
[ -x /usr/bin/time ] || { apt-get update -qq && apt-get install -y -qq time; }
python3 -c 'import cryptography' 2>/dev/null || python3 -m pip install -q cryptography
target=$(cargo metadata --format-version 1 --no-deps |
  python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
cargo build -q --release -p certrotate-cli
scale=$(cargo bench -q --features kube --bench kube_scale --no-run --message-format=json |
  python3 -c 'import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "kube_scale" and m.get("executable"):
        print(m["executable"])')
python3 tools/bench/scaling.py "$target/release/certrotate" "$scale" "${TMPDIR:-/tmp}/certrotate-scaling" "$@"
