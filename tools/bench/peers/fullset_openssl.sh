#!/usr/bin/env bash
# The envoy-gateway full set with the openssl CLI: CA + 3 leaves (SANs, mTLS EKUs) + HMAC.
# Usage: fullset_openssl.sh ecdsa-p256|rsa-2048 OUTDIR
set -euo pipefail
alg=$1; out=$2; ns=envoy-gateway-system
mkdir -p "$out"; cd "$out"
case $alg in
  ecdsa-p256) newkey=(-newkey ec -pkeyopt ec_paramgen_curve:P-256) ;;
  rsa-2048) newkey=(-newkey rsa:2048) ;;
esac
openssl req -x509 "${newkey[@]}" -nodes -keyout ca.key -out ca.crt -subj /CN=envoy-gateway -days 1825 2>/dev/null
leaf() {
  local name=$1 cn=$2 sans=$3
  openssl req "${newkey[@]}" -nodes -keyout "$name.key" -out "$name.csr" -subj "/CN=$cn" 2>/dev/null
  printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth,clientAuth\nkeyUsage=digitalSignature,keyEncipherment\n' "$sans" > "$name.ext"
  openssl x509 -req -in "$name.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -days 1825 -extfile "$name.ext" -out "$name.crt" 2>/dev/null
}
leaf envoy-gateway envoy-gateway "DNS:envoy-gateway,DNS:envoy-gateway.$ns,DNS:envoy-gateway.$ns.svc,DNS:envoy-gateway.$ns.svc.cluster.local"
leaf envoy '*' "DNS:*.$ns"
leaf envoy-rate-limit '*' "DNS:*.$ns"
openssl rand 32 > hmac-secret
