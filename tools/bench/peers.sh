#!/usr/bin/env bash
# Peer comparison: installs the peers from the registries, builds certrotate in release,
# and runs tools/bench/peers.py (ROUNDS rounds, default 20, alternating tools). See BENCHMARKS.md.
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds=${1:-20}
need=()
command -v cfssl >/dev/null || need+=(golang-cfssl)
command -v openssl >/dev/null || need+=(openssl)
[ -x /usr/bin/time ] || need+=(time)
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq && apt-get install -y -qq "${need[@]}"
fi
python3 -c 'import cryptography' 2>/dev/null || python3 -m pip install -q cryptography
# PROFILE=dist measures the published build (fat LTO) instead of `release`.
profile=${PROFILE:-release}
target=$(cargo metadata --format-version 1 --no-deps |
  python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
cargo build -q --profile "$profile" -p certrotate-cli
python3 tools/bench/peers.py "$target/$profile/certrotate" "${TMPDIR:-/tmp}/certrotate-peers" "$rounds"
