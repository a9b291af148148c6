"""Writes NEW (N tiny CA certificates) and OLD (N, the first half expired at NOW) for the
scaling benchmark, fast enough for N = 1,000,000.

Each certificate is one Ed25519 self-signed CA certificate (CA:TRUE, keyCertSign: what
`bundle` requires of NEW; about 240 bytes of DER, 384 of PEM) whose 8-byte serial number is replaced by a counter: every block is distinct DER that
parses as X.509, as the bundling rule and Python's `load_pem_x509_certificates` require.
The signature no longer matches, which neither checks (the rule validates the structure
of `new`, not signatures: a CA bundle is not a chain).

Usage: make_tiny.py N NEW OLD NOW_UNIX
"""
import base64
import datetime
import sys

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.x509.oid import NameOID

n, new_path, old_path, now = int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
now = datetime.datetime.fromtimestamp(now, datetime.timezone.utc)
key = ed25519.Ed25519PrivateKey.generate()
SERIAL = 0x0123456789ABCDEF  # 8 bytes, positive, found again below


def template(start):
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "t")])
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(SERIAL)
        .not_valid_before(start).not_valid_after(start + datetime.timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(
            digital_signature=False, content_commitment=False, key_encipherment=False,
            data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
            encipher_only=False, decipher_only=False), critical=True)
        .sign(key, None)
    )
    der = cert.public_bytes(serialization.Encoding.DER)
    at = der.index(SERIAL.to_bytes(8, "big"))
    return der[:at], der[at + 8:]


def pem(der):
    b64 = base64.encodebytes(der).replace(b"\n", b"")
    lines = b"\n".join(b64[i:i + 64] for i in range(0, len(b64), 64))
    return b"-----BEGIN CERTIFICATE-----\n" + lines + b"\n-----END CERTIFICATE-----\n"


def write(path, parts, first):
    with open(path, "wb") as f:
        for i in range(n):
            head, tail = parts(i)
            # 0x01 first keeps the INTEGER positive and minimally encoded.
            f.write(pem(head + (0x0100000000000000 | (first + i)).to_bytes(8, "big") + tail))


valid = template(now - datetime.timedelta(days=1))
expired = template(now - datetime.timedelta(days=400))
write(new_path, lambda i: valid, 0)
write(old_path, lambda i: expired if i < n // 2 else valid, n)
