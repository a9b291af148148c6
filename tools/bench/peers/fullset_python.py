"""The envoy-gateway full set with Python `cryptography`, in one process.

Usage: fullset_python.py ecdsa-p256|rsa-2048 OUTDIR
"""
import datetime
import os
import sys

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

alg, out = sys.argv[1], sys.argv[2]
ns = "envoy-gateway-system"
os.makedirs(out, exist_ok=True)
now = datetime.datetime.now(datetime.timezone.utc)


def key():
    if alg == "rsa-2048":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return ec.generate_private_key(ec.SECP256R1())


def write(name, cert, k):
    with open(os.path.join(out, name + ".crt"), "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    with open(os.path.join(out, name + ".key"), "wb") as f:
        f.write(k.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))


ca_key = key()
ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "envoy-gateway")])
ca = (
    x509.CertificateBuilder()
    .subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
    .serial_number(x509.random_serial_number())
    .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=1825))
    .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
    .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
    .sign(ca_key, hashes.SHA256())
)
write("ca", ca, ca_key)
for name, cn, sans in [
    ("envoy-gateway", "envoy-gateway", ["envoy-gateway", f"envoy-gateway.{ns}", f"envoy-gateway.{ns}.svc", f"envoy-gateway.{ns}.svc.cluster.local"]),
    ("envoy", "*", [f"*.{ns}"]),
    ("envoy-rate-limit", "*", [f"*.{ns}"]),
]:
    k = key()
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])).issuer_name(ca_name)
        .public_key(k.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=1825))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(s) for s in sans]), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    write(name, cert, k)
with open(os.path.join(out, "hmac-secret"), "wb") as f:
    f.write(os.urandom(32))
