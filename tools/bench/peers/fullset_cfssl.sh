#!/usr/bin/env bash
# The envoy-gateway full set with cfssl (Debian golang-cfssl): CA + 3 leaves + HMAC.
# Usage: fullset_cfssl.sh ecdsa-p256|rsa-2048 OUTDIR
set -euo pipefail
alg=$1; out=$2; ns=envoy-gateway-system
mkdir -p "$out"; cd "$out"
case $alg in
  ecdsa-p256) key='{"algo":"ecdsa","size":256}' ;;
  rsa-2048) key='{"algo":"rsa","size":2048}' ;;
esac
cat > config.json <<JSON
{"signing":{"default":{"expiry":"43800h","usages":["digital signature","key encipherment","server auth","client auth"]}}}
JSON
echo "{\"CN\":\"envoy-gateway\",\"key\":$key}" | cfssl gencert -initca - 2>/dev/null | cfssljson -bare ca
gen() {
  echo "{\"CN\":\"$2\",\"hosts\":[$3],\"key\":$key}" |
    cfssl gencert -ca ca.pem -ca-key ca-key.pem -config config.json - 2>/dev/null | cfssljson -bare "$1"
}
gen envoy-gateway envoy-gateway "\"envoy-gateway\",\"envoy-gateway.$ns\",\"envoy-gateway.$ns.svc\",\"envoy-gateway.$ns.svc.cluster.local\""
gen envoy '*' "\"*.$ns\""
gen envoy-rate-limit '*' "\"*.$ns\""
head -c 32 /dev/urandom > hmac-secret
