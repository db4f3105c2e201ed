"""The one place PINs and card numbers are hidden, as they are captured.

A caller's answer to a secret prompt (PIN, card number) is sealed by the call before anything else
sees it: the dialog, its tracker and every log get only an encrypted token that the actions open
when they check it, and transcripts, recordings and printed turns get `HIDDEN`. The key is
derived from this install's secret under var/, never stored beside what it seals.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from pathlib import Path
from typing import Optional

from cryptography.fernet import Fernet, InvalidToken

from ivr.accounts.cards import install_secret
from ivr.events import Expectation

HIDDEN = "[hidden]"
SEALED_INTENT = "inform"
SEALED_ENTITY = "sealed"
NOT_TAKEN = "/nlu_fallback"  # what the dialog hears for a card number said aloud
SEAL_LIFETIME_SECONDS = 3600  # a call is long over by then
CARD_NUMBER = re.compile(r"(?<!\d)(?:\d[ -]?){12,18}\d(?!\d)")


class Seal:
    """Seals and opens caller secrets with a key derived from the install secret."""

    def __init__(self, var_dir: Path):
        secret = install_secret(var_dir)
        key = hmac.new(secret, b"ivr: sealed caller answers", hashlib.sha256).digest()
        self._fernet = Fernet(base64.urlsafe_b64encode(key))
        self._vouching = hmac.new(secret, b"ivr: identified callers", hashlib.sha256).digest()

    def vouch(self, call_id: str, account: str) -> str:
        """Proof, for the dialog to carry, that this call identified this account (checked PIN)."""
        return hmac.new(self._vouching, f"{call_id}\0{account}".encode(), hashlib.sha256).hexdigest()

    def vouches(self, proof: object, call_id: str, account: object) -> bool:
        """Whether `proof` was made by vouch() for this call and account: a slot's word is not enough."""
        return isinstance(proof, str) and isinstance(account, str) and hmac.compare_digest(
            proof, self.vouch(call_id, account))

    def message(self, answer: str) -> str:
        """What the dialog receives instead of the answer: an `inform` carrying only the sealed token."""
        token = self._fernet.encrypt(answer.encode()).decode()
        return f"/{SEALED_INTENT}" + json.dumps({SEALED_ENTITY: token})

    def answer(self, text: str, expects: Expectation, spoken: bool) -> tuple[str, bool]:
        """What the dialog gets for a caller's answer, and whether the answer must be hidden.

        At a secret prompt digits go sealed ("agent" passes as said); where the keypad is required,
        digits said aloud are not taken at all.
        """
        if not expects.secret or not any(c.isdigit() for c in text):
            return text, False
        if spoken and expects.keypad_only:
            return NOT_TAKEN, True
        return self.message(text), True

    def open(self, token: object) -> Optional[str]:
        """The caller's answer, or None for anything not sealed here (or too old)."""
        try:
            return self._fernet.decrypt(str(token).encode(), ttl=SEAL_LIFETIME_SECONDS).decode()
        except (InvalidToken, ValueError):
            return None


def is_sealed(text: str) -> bool:
    return text.startswith(f"/{SEALED_INTENT}{{") and f'"{SEALED_ENTITY}"' in text


def mask_card_numbers(text: str) -> str:
    """Any card-length run of digits in free text, as its last four: for text no prompt marked secret."""
    return CARD_NUMBER.sub(lambda m: f"card ending {re.sub(r'[ -]', '', m.group())[-4:]}", text)
