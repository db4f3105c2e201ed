"""Keypad tones from a phone line: RFC 4733 telephone-events in RTP, and SIP INFO bodies as a fallback.

A key press arrives as several event packets sharing one RTP timestamp, the last three marked
"end"; it is one key, reported once, however many of its packets arrive or are repeated.
"""
from __future__ import annotations

import struct
from collections import deque
from typing import Optional

KEYS = "0123456789*#"  # events 0-11; A-D (12-15) and flash (16) are not keys callers have
EVENT = struct.Struct("!BBH")
REMEMBERED = 16  # key presses remembered to recognise their repeated packets


class KeypadEvents:
    """Telephone-event payloads in, each key press out once."""

    def __init__(self):
        self._seen: deque[int] = deque(maxlen=REMEMBERED)  # RTP timestamps of presses already reported

    def key(self, timestamp: int, payload: bytes) -> Optional[str]:
        if len(payload) < EVENT.size:
            return None
        event, _flags, _duration = EVENT.unpack_from(payload)
        if event >= len(KEYS) or timestamp in self._seen:
            return None
        self._seen.append(timestamp)
        return KEYS[event]


def info_key(content_type: str, body: bytes) -> Optional[str]:
    """The key of a SIP INFO: application/dtmf-relay ("Signal=5") or application/dtmf ("5")."""
    kind = content_type.split(";")[0].strip().lower()
    text = body.decode("ascii", "replace").strip()
    if kind == "application/dtmf-relay":
        fields = dict(line.partition("=")[::2] for line in text.splitlines())
        text = next((v.strip() for k, v in fields.items() if k.strip().lower() == "signal"), "")
    elif kind != "application/dtmf":
        return None
    if text in ("10", "11"):
        return KEYS[int(text)]
    return text if len(text) == 1 and text in KEYS else None
