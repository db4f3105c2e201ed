"""PINs are kept only as salted scrypt hashes: a four-digit PIN has 10,000 values, so the hash must be slow."""
from __future__ import annotations

import base64
import hashlib
import hmac
import os

# ~16 MiB and tens of milliseconds per guess; stored with the hash so it can be raised later.
_N, _R, _P = 2 ** 14, 8, 1


def hash_pin(pin: str) -> str:
    salt = os.urandom(16)
    return "$".join(["scrypt", str(_N), str(_R), str(_P), _b64(salt), _b64(_scrypt(pin, salt, _N, _R, _P))])


def pin_matches(pin: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(digest)
        actual = _scrypt(pin, base64.b64decode(salt), int(n), int(r), int(p))
    except ValueError:
        return False
    return hmac.compare_digest(actual, expected)


def _scrypt(pin: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(pin.encode("utf-8"), salt=salt, n=n, r=r, p=p, dklen=32)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")
