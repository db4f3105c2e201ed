"""Echo cancellation for a loudspeaker call: the bot's own voice, leaking back into the microphone,
is removed before endpointing so it can neither barge in on the bot nor be heard as the caller.

WebRTC's AEC3 (the canceller in Chrome) through pywebrtc-audio. The transport hands over what the
speaker played and what the microphone heard, block by block, in the order the devices made them.
"""
from __future__ import annotations

import numpy as np
from pywebrtc_audio import EchoCanceller as _Aec3

from ivr.events import SAMPLE_WIDTH

# Blocks are paired by their place in the two streams, not by the devices' timestamps: speaker and
# microphone run off one clock, so the n-th sample heard is always the same distance behind the
# n-th sample played, and AEC3 finds that distance (the echo's delay) itself. PulseAudio's
# timestamps jitter by tens of milliseconds, which AEC3 took for a moving echo: on the loudspeaker
# rig of the tests, timestamp pairing let echo through at up to -18 dBFS, stream pairing at -43.
# The reference starts this far behind the microphone; if the speaker hands its blocks over later
# than that, the reference is padded with silence and stays that much further behind (an echo is
# never heard before its sound was handed to the speaker, so it still leads the echo).
REFERENCE_LAG_SECONDS = 0.02
KEEP_SECONDS = 2.0  # played audio the microphone has not caught up with; more means a stalled input


class EchoCanceller:
    def __init__(self, rate: int):
        self.rate = rate
        self._aec = _Aec3(sample_rate=rate)
        self._played = bytearray(int(rate * REFERENCE_LAG_SECONDS) * SAMPLE_WIDTH)
        self._keep = int(rate * KEEP_SECONDS) * SAMPLE_WIDTH

    def played(self, pcm: bytes) -> None:
        """Audio (at `rate`) the speaker played next, silence included."""
        self._played += pcm
        surplus = len(self._played) - self._keep
        if surplus > 0:
            del self._played[:surplus]

    def heard(self, pcm: bytes) -> bytes:
        """The microphone's next audio (at `rate`), with the bot's echo removed."""
        if not pcm:
            return pcm
        far = bytes(self._played[:len(pcm)])
        del self._played[:len(pcm)]
        far = bytes(len(pcm) - len(far)) + far
        near = np.frombuffer(pcm, dtype="<i2")
        return self._aec.process(near, np.frombuffer(far, dtype="<i2")).astype("<i2").tobytes()
