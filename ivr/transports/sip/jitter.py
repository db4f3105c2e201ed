"""A small jitter buffer: packets in as they arrive, one frame out per 20 ms tick, in sequence order.

Late and duplicate packets are dropped; a packet still missing once `depth` later ones wait is
given up for lost and its frame is silence (None). Playout starts once `depth` packets are in.
"""
from __future__ import annotations

from typing import Optional

SEQUENCE_SPACE = 1 << 16


class JitterBuffer:
    def __init__(self, depth: int = 3, capacity: int = 50):
        self.depth, self.capacity = depth, capacity
        self._frames: dict[int, bytes] = {}  # extended sequence number -> payload
        self._next: Optional[int] = None  # the extended sequence number to play next
        self._primed = False
        self.late = self.duplicates = self.lost = 0

    def put(self, sequence: int, payload: bytes) -> None:
        at = self._extend(sequence)
        if self._next is None:
            self._next = at
        if at < self._next:
            self.late += 1
        elif at >= self._next + self.capacity:  # a jump far ahead (the sender restarted): follow it
            self._frames.clear()
            self._next, self._primed = at, False
            self._frames[at] = payload
        elif at in self._frames:
            self.duplicates += 1
        else:
            self._frames[at] = payload

    def get(self) -> Optional[bytes]:
        """The next frame's payload, or None for silence (nothing yet, or lost)."""
        if not self._primed:
            if len(self._frames) < self.depth:
                return None
            self._primed = True
        if not self._frames:
            self._primed = False  # ran dry: wait for `depth` packets again before playing on
            return None
        if self._next not in self._frames and len(self._frames) < self.depth:
            return None  # maybe only late: wait for it a little
        payload = self._frames.pop(self._next, None)
        if payload is None:
            self.lost += 1
        self._next += 1
        return payload

    def _extend(self, sequence: int) -> int:
        """The 16-bit sequence number as a count that keeps growing across wrap-arounds."""
        if self._next is None:
            return sequence
        base = self._next - SEQUENCE_SPACE // 2
        return base + (sequence - base) % SEQUENCE_SPACE
