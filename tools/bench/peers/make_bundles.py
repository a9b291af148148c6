"""Writes NEW (N valid CA certificates) and OLD (N, the first half expired at NOW) for the
merge benchmark. Usage: make_bundles.py N NEW OLD NOW_UNIX"""
import datetime
import sys

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

n, new_path, old_path, now = int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
now = datetime.datetime.fromtimestamp(now, datetime.timezone.utc)
key = ec.generate_private_key(ec.SECP256R1())


def ca(i, start):
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"ca-{i}")])
    return (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start).not_valid_after(start + datetime.timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)
    )


with open(new_path, "wb") as f:
    f.write(b"".join(ca(i, now) for i in range(n)))
with open(old_path, "wb") as f:
    f.write(b"".join(ca(n + i, now - datetime.timedelta(days=400 if i < n // 2 else 0)) for i in range(n)))
