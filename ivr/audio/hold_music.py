"""What a queued caller hears between announcements: a soft, slow chime, never silence.

Silence on hold sounds like a dropped call; a quiet, unhurried arpeggio says the line is alive
without being tiring to hear for minutes.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

from ivr.events import AudioChunk

NOTES_HZ = (392.0, 493.9, 587.3, 493.9)  # G4 B4 D5 B4
NOTE_SECONDS = 0.5
LEVEL = 0.08  # about -22 dBFS: under the announcements, above line noise


@lru_cache(maxsize=4)
def _cycle(rate: int) -> bytes:
    t = np.arange(int(rate * NOTE_SECONDS)) / rate
    envelope = np.exp(-4.0 * t) * np.minimum(1.0, t / 0.01)  # a struck note, no click
    notes = [np.sin(2 * np.pi * hz * t) * envelope for hz in NOTES_HZ]
    samples = np.concatenate(notes) * LEVEL * 32767
    return samples.astype("<i2").tobytes()


def hold_music(rate: int, seconds: float, offset: float = 0.0) -> AudioChunk:
    """`seconds` of hold music starting `offset` seconds into the loop (so pieces join up)."""
    cycle = _cycle(rate)
    start = (int(offset * rate) * 2) % len(cycle)
    size = int(seconds * rate) * 2
    repeated = cycle * (2 + size // len(cycle))
    return AudioChunk(repeated[start:start + size], rate)
