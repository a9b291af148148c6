"""The merge of merge_python.py for an OLD that may hold bad blocks: each PEM block of OLD
is loaded on its own and skipped if it is not a certificate (as `certrotate bundle` skips
and reports them), so one junk block does not fail the whole bundle.

Usage: merge_python_skip.py NEW OLD NOW_UNIX > OUT
"""
import datetime
import re
import sys

from cryptography import x509
from cryptography.hazmat.primitives import serialization

new = x509.load_pem_x509_certificates(open(sys.argv[1], "rb").read())
old = open(sys.argv[2], "rb").read()
now = datetime.datetime.fromtimestamp(int(sys.argv[3]), datetime.timezone.utc)
seen = {c.public_bytes(serialization.Encoding.DER) for c in new}
out = list(new)
skipped = 0
for block in re.finditer(rb"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----\r?\n?", old, re.S):
    try:
        c = x509.load_pem_x509_certificate(block.group())
    except ValueError:
        skipped += 1
        continue
    if c.not_valid_after_utc < now or c.public_bytes(serialization.Encoding.DER) in seen:
        continue
    out.append(c)
    break
sys.stdout.buffer.write(b"".join(c.public_bytes(serialization.Encoding.PEM) for c in out))
print(f"skipped {skipped} blocks of OLD", file=sys.stderr)
