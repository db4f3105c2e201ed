"""Echo cancellation for a loudspeaker call: the bot's own voice, leaking back into the microphone,
is removed before endpointing so it can neither barge in on the bot nor be heard as the caller.

WebRTC's AEC3 (the canceller in Chrome) through pywebrtc-audio. The transport that plays and
records says what reached the speaker and when, and what the microphone heard and when.
"""
from __future__ import annotations

import numpy as np
from pywebrtc_audio import EchoCanceller as _Aec3

from ivr.events import SAMPLE_WIDTH

# An echo is heard after its audio played; AEC3 estimates that delay itself but cannot use audio
# it has not been given yet. Pairing each block heard with the audio playing slightly later keeps
# jitter in the devices' timestamps from ever putting an echo before its cause.
LOOKAHEAD_SECONDS = 0.02
KEEP_SECONDS = 2.0  # played audio older than this cannot still be echoing
# Device timestamps jitter by milliseconds, which a canceller would take for a moving echo: a block
# closer than this to where the previous one ended simply follows it. Further off is a real gap.
JITTER_SECONDS = 0.05


class EchoCanceller:
    """Lays what was played on a timeline, and cancels each block heard against the audio that was
    playing when it was heard. Timestamps, not sample counts, pair them: a device underrun or a
    late start then shifts nothing."""

    def __init__(self, rate: int):
        self.rate = rate
        self._aec = _Aec3(sample_rate=rate)
        self._played = bytearray()
        self._start = None  # time of the first byte in _played
        self._keep = int(rate * KEEP_SECONDS) * SAMPLE_WIDTH
        self._heard_until = None  # where the last block heard ended

    def played(self, pcm: bytes, at: float) -> None:
        """Audio (at `rate`) that reaches the speaker from time `at` on, silence included."""
        if self._start is None:
            self._start = at
        end = self._start + len(self._played) / SAMPLE_WIDTH / self.rate
        if abs(at - end) > JITTER_SECONDS:
            self._place(at)
        self._played += pcm
        surplus = len(self._played) - self._keep
        if surplus > 0:
            del self._played[:surplus]
            self._start += surplus / SAMPLE_WIDTH / self.rate

    def heard(self, pcm: bytes, at: float) -> bytes:
        """Microphone audio (at `rate`) captured from time `at` on, with the bot's echo removed."""
        if not pcm:
            return pcm
        if self._heard_until is not None and abs(at - self._heard_until) <= JITTER_SECONDS:
            at = self._heard_until
        self._heard_until = at + len(pcm) / SAMPLE_WIDTH / self.rate
        far = self._reference(at + LOOKAHEAD_SECONDS, len(pcm))
        near = np.frombuffer(pcm, dtype="<i2")
        return self._aec.process(near, np.frombuffer(far, dtype="<i2")).astype("<i2").tobytes()

    def _place(self, at: float) -> None:
        """A gap (silence the device played on its own) or an overlap: put the next block at `at`."""
        offset = self._offset(at)
        if offset >= len(self._played):
            self._played += bytes(offset - len(self._played))
        elif offset >= 0:
            del self._played[offset:]
        else:
            self._played.clear()
            self._start = at

    def _reference(self, at: float, size: int) -> bytes:
        if self._start is None:
            return bytes(size)
        offset = self._offset(at)
        window = self._played[max(offset, 0): max(offset + size, 0)]
        before = bytes(min(max(-offset, 0), size))
        return (before + bytes(window) + bytes(size))[:size]

    def _offset(self, at: float) -> int:
        return int(round((at - self._start) * self.rate)) * SAMPLE_WIDTH
