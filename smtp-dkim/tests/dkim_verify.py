#!/usr/bin/env python3
"""Verify DKIM signatures with dkimpy, an implementation nobody in this project wrote.

Usage: dkim_verify.py KEY.pem SELECTOR DOMAIN MESSAGE...

The public key is derived here from the private key with `cryptography` (not taken from the
Rust code) and handed to dkimpy through its DNS hook, for <SELECTOR>._domainkey.<DOMAIN>. only.
Prints `record <TXT>` first, then one line per message: `<path> True` or `<path> False`.
Exits 2 when dkimpy, cryptography or pynacl is missing: the Rust tests fail then, loudly.
"""

import base64
import sys

try:
    import dkim
    import nacl  # noqa: F401  (dkimpy needs it for ed25519-sha256)
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
except ImportError as e:
    print(f"missing Python package: {e}; pip install dkimpy cryptography pynacl", file=sys.stderr)
    sys.exit(2)


def txt_record(pem: bytes) -> bytes:
    key = serialization.load_pem_private_key(pem, password=None)
    if isinstance(key, rsa.RSAPrivateKey):
        der = key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return b"v=DKIM1; k=rsa; p=" + base64.b64encode(der)
    if isinstance(key, ed25519.Ed25519PrivateKey):
        raw = key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        return b"v=DKIM1; k=ed25519; p=" + base64.b64encode(raw)
    raise SystemExit(f"unsupported key type {type(key)}")


def main() -> None:
    key_path, selector, domain, *messages = sys.argv[1:]
    with open(key_path, "rb") as f:
        record = txt_record(f.read())
    expected = f"{selector}._domainkey.{domain}.".encode()

    def dnsfunc(name, timeout=5):
        return record if name == expected else None

    print("record " + record.decode(), flush=True)
    for path in messages:
        with open(path, "rb") as f:
            message = f.read()
        ok = dkim.verify(message, dnsfunc=dnsfunc)
        print(f"{path} {ok}", flush=True)


main()
