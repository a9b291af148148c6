#!/usr/bin/env bash
# Peer comparison: installs the peers from the registries, builds certrotate in release,
# and runs bench/peers.py (ROUNDS rounds, default 20, alternating tools). See BENCHMARKS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-20}
need=()
command -v cfssl >/dev/null || need+=(golang-cfssl)
command -v openssl >/dev/null || need+=(openssl)
[ -x /usr/bin/time ] || need+=(time)
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq && apt-get install -y -qq "${need[@]}"
fi
python3 -c 'import cryptography' 2>/dev/null || python3 -m pip install -q cryptography
cargo build -q --release -p certrotate-cli
python3 bench/peers.py "$PWD/target/release/certrotate" "${TMPDIR:-/tmp}/certrotate-peers" "$rounds"
