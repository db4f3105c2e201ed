"""The one place PINs and card numbers are hidden, as they are captured.

A caller's answer to a secret prompt (PIN, card number) is sealed by the call before anything else
sees it: the dialog, its tracker and every log get only an encrypted token that the actions open
when they check it, and transcripts, recordings and printed turns get `HIDDEN`.

Sealed tokens expire by design, not by the app's politeness: they are sealed under keys that exist
only in this process's memory, one per time window, and a window's key is dropped once the next
window is over. So a token copied out of a log, a tracker dump or a database cannot be opened by
anyone holding the files on disk (no key is ever written), nor by this process after its life.
A token opens in the window it was sealed in and the next: a call spanning a rotation keeps working.
The price: only the process that sealed an answer can open it, so the actions must run in the bot's
process (they do, ivr.dialog.actions); an external action server (endpoints.yml) hears every PIN as wrong.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import re
import threading
import time
from pathlib import Path
from typing import Callable, Optional

from cryptography.fernet import Fernet, InvalidToken

from ivr.accounts.cards import install_secret
from ivr.events import Expectation

HIDDEN = "[hidden]"
SEALED_INTENT = "inform"
SEALED_ENTITY = "sealed"
NOT_TAKEN = "/nlu_fallback"  # what the dialog hears for a card number said aloud
SEAL_WINDOW_SECONDS = 1800  # a sealed answer opens for 30 to 60 minutes: a call is long over by then
CARD_NUMBER = re.compile(r"(?<!\d)(?:\d[ -]?){12,18}\d(?!\d)")


class SealKeys:
    """This process's sealing keys, one per time window of SEAL_WINDOW_SECONDS, held only in memory.

    Fresh random keys, not derived from anything on disk: nothing outside this process can make them
    again. `clock` is monotonic (a wall-clock step neither revives nor kills a window early).
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self._clock, self._lock = clock, threading.Lock()
        self._keys: dict[int, Fernet] = {}

    def sealing(self) -> Fernet:
        with self._lock:
            window = self._rotate()
            return self._keys.setdefault(window, Fernet(Fernet.generate_key()))

    def opening(self) -> list[Fernet]:
        """The keys that may still open a token: this window's and the last one's, newest first."""
        with self._lock:
            window = self._rotate()
            return [self._keys[w] for w in (window, window - 1) if w in self._keys]

    def _rotate(self) -> int:
        window = int(self._clock() // SEAL_WINDOW_SECONDS)
        for old in [w for w in self._keys if w < window - 1]:
            del self._keys[old]  # the only reference: what it sealed cannot be opened again (never on disk)
        return window


PROCESS_KEYS = SealKeys()  # shared by the calls and the actions of this process


class Seal:
    """Seals and opens caller secrets under this process's window keys; vouches under the install secret."""

    def __init__(self, var_dir: Path, keys: Optional[SealKeys] = None):
        secret = install_secret(var_dir)
        self._keys = keys or PROCESS_KEYS
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
        token = self._keys.sealing().encrypt(answer.encode()).decode()
        return f"/{SEALED_INTENT}" + json.dumps({SEALED_ENTITY: token})

    def opened(self, text: object) -> Optional[str]:
        """The caller's answer from a message() (as an action gets it back), or None for anything else.
        Read here, beside message(), so the format has one owner."""
        prefix = f"/{SEALED_INTENT}"
        if not isinstance(text, str) or not text.startswith(prefix):
            return None
        try:
            token = json.loads(text[len(prefix):]).get(SEALED_ENTITY)
        except (ValueError, AttributeError):  # not JSON, or JSON that is not an object
            return None
        return self.open(token) if token else None

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
        """The caller's answer, or None for anything not sealed in this process (or too old)."""
        for key in self._keys.opening():
            try:
                return key.decrypt(str(token).encode()).decode()
            except (InvalidToken, ValueError):
                continue
        return None


def is_sealed(text: str) -> bool:
    """Whether text looks like a message(): looser than opened(), since it decides what is never shown."""
    return text.startswith(f"/{SEALED_INTENT}{{") and f'"{SEALED_ENTITY}"' in text


def mask_card_numbers(text: str) -> str:
    """Any card-length run of digits in free text, as its last four: for text no prompt marked secret."""
    return CARD_NUMBER.sub(lambda m: f"card ending {re.sub(r'[ -]', '', m.group())[-4:]}", text)
