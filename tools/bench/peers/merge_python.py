"""Merge a large new bundle with a large old one with Python `cryptography`: parse both,
keep all of new, then the first certificate of old that is not expired and not in new.

Usage: merge_python.py NEW OLD NOW_UNIX > OUT
"""
import datetime
import sys

from cryptography import x509
from cryptography.hazmat.primitives import serialization

new = x509.load_pem_x509_certificates(open(sys.argv[1], "rb").read())
old = x509.load_pem_x509_certificates(open(sys.argv[2], "rb").read())
now = datetime.datetime.fromtimestamp(int(sys.argv[3]), datetime.timezone.utc)
seen = {c.public_bytes(serialization.Encoding.DER) for c in new}
out = list(new)
for c in old:
    if c.not_valid_after_utc < now or c.public_bytes(serialization.Encoding.DER) in seen:
        continue
    out.append(c)
    break
sys.stdout.buffer.write(b"".join(c.public_bytes(serialization.Encoding.PEM) for c in out))
