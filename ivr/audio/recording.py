"""A two-channel call recording (caller left, bot right) on the call's clock."""
from __future__ import annotations

from pathlib import Path

from ivr.audio.pcm import resample, write_stereo_wav
from ivr.events import SAMPLE_WIDTH, AudioChunk


class Recording:
    def __init__(self, rate: int):
        self.rate = rate
        self._caller = bytearray()
        self._bot = bytearray()

    def caller(self, chunk: AudioChunk) -> None:
        self._place(self._caller, chunk)

    def bot(self, chunk: AudioChunk) -> None:
        self._place(self._bot, chunk)

    def _place(self, track: bytearray, chunk: AudioChunk) -> None:
        pcm = resample(chunk, self.rate).pcm
        start = int(round(chunk.timestamp * self.rate)) * SAMPLE_WIDTH
        if len(track) < start:
            track.extend(bytes(start - len(track)))
        track[start:start + len(pcm)] = pcm

    def save(self, path: Path) -> None:
        write_stereo_wav(path, bytes(self._caller), bytes(self._bot), self.rate)
