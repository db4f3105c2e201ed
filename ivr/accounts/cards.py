"""Keyed card numbers: checked (Luhn, expiry) and turned into a token and last four the moment they arrive.

The full number is never stored or returned. The token is HMAC-SHA256 under a per-install secret kept with
the install's keys (var/keys/card-secret, mode 0600; see ivr.keys), so the same card always gets the same
token on this install and the token alone does not give the number back.
"""
from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from datetime import date
from pathlib import Path

from stdnum import luhn
from stdnum.exceptions import ValidationError

from ivr.accounts.model import AccountsError, Card
from ivr.keys import key_file

SECRET_FILE = "card-secret"


class CardRefused(AccountsError, ValueError):
    """A keyed card that cannot be used; `reason` is one of the constants below."""

    NUMBER = "number"  # not 13-19 digits
    CHECKSUM = "checksum"  # fails the Luhn check: a mistyped digit
    EXPIRY = "expiry"  # not MMYY
    EXPIRED = "expired"

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


class CardTokens:
    """Reads keyed cards into Cards (last four + token) under one install's secret."""

    def __init__(self, secret: bytes):
        if len(secret) < 32:
            raise ValueError("the card token secret must be at least 32 bytes")
        self._secret = secret

    @classmethod
    def for_install(cls, var_dir: Path) -> "CardTokens":
        return cls(install_secret(var_dir))

    def read(self, number: str, expiry: str, today: date) -> Card:
        """The card keyed as `number` (digits; spaces and dashes allowed) expiring `expiry` (MMYY), checked
        against `today`; raises CardRefused."""
        digits = _digits(number)
        check_expiry(expiry, today)
        return self.card(digits)

    def card(self, number: str) -> Card:
        """The Card for a number that passes the Luhn check, whatever its expiry (used for cards on file)."""
        digits = _digits(number)
        token = hmac.new(self._secret, digits.encode("ascii"), hashlib.sha256).hexdigest()
        return Card(last4=digits[-4:], token=token)

    def __repr__(self) -> str:
        return "CardTokens(<secret>)"


def check_expiry(expiry: str, today: date) -> None:
    """A card is good through the last day of its expiry month."""
    text = expiry.replace("/", "").strip()
    if len(text) != 4 or not text.isdigit() or not 1 <= int(text[:2]) <= 12:
        raise CardRefused(CardRefused.EXPIRY, "the expiry date must be four digits, month then year (MMYY)")
    month, year = int(text[:2]), 2000 + int(text[2:])
    if (year, month) < (today.year, today.month):
        raise CardRefused(CardRefused.EXPIRED, f"the card expired at the end of {month:02d}/{year}")


def install_secret(var_dir: Path) -> bytes:
    """This install's token secret, made on first use. Written whole under a temporary name and linked into
    place, so two processes starting at once end up with the same secret and nobody reads half a file."""
    path = key_file(var_dir, SECRET_FILE)
    if not path.exists():
        temporary = path.with_name(f".{SECRET_FILE}.{os.getpid()}.{secrets.token_hex(4)}")
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(descriptor, "w") as handle:
                handle.write(secrets.token_hex(32) + "\n")
                handle.flush()
                os.fsync(handle.fileno())
            try:
                os.link(temporary, path)
            except FileExistsError:
                pass  # another process made it first: use theirs
        finally:
            temporary.unlink()
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        raise PermissionError(f"{path} must be readable by its owner only (chmod 600 {path}); it is {mode:o}")
    return bytes.fromhex(path.read_text().strip())


def _digits(number: str) -> str:
    digits = "".join(ch for ch in number if ch not in " -")
    if not (digits.isascii() and digits.isdigit()) or not 13 <= len(digits) <= 19:
        raise CardRefused(CardRefused.NUMBER, "a card number is 13 to 19 digits")
    try:
        luhn.validate(digits)
    except ValidationError:
        raise CardRefused(CardRefused.CHECKSUM,
                          "that card number does not check out: a digit may be mistyped") from None
    return digits
