"""A scripted caller: one item (WAV audio or keypad digits) per answer, on the call's own clock.

The caller waits for the bot to finish speaking, then speaks the next item and stays silent until the
bot answers. Speech and the endpoint silence after it arrive as fast as the call takes them; the
silence while the bot thinks passes in real time, so the call's clock (and its recording) shows
how long the caller really waited.
"""
from __future__ import annotations

import asyncio
import time
from typing import AsyncIterator, Sequence, Union

from ivr.audio.pcm import resample, split
from ivr.events import AudioChunk, Dtmf
from ivr.transports.base import Hangup, Incoming

FRAME = 0.02
LEAD_SILENCE = 0.3

CallerItem = Union[AudioChunk, Dtmf]


class CallerFiles:
    def __init__(self, items: Sequence[CallerItem], rate: int, fast_silence: float, wait_limit: float):
        self.rate = rate
        self._items = list(items)
        self._fast_silence = fast_silence  # enough silence for the endpointer to decide
        self._wait_limit = wait_limit  # longest the caller stays silent before hanging up
        self._clock = 0.0
        self._bot_done = asyncio.Event()  # the bot finished a prompt and waits
        self._bot_spoke = asyncio.Event()  # the bot started answering since the caller last spoke
        self.heard: list[AudioChunk] = []  # the bot's audio, as the caller heard it

    def now(self) -> float:
        return self._clock

    async def incoming(self) -> AsyncIterator[Incoming]:
        for item in self._items:
            await self._bot_done.wait()
            self._bot_done.clear()
            self._bot_spoke.clear()
            if isinstance(item, Dtmf):
                yield item
            else:
                for chunk in self._speech(item):
                    yield chunk
                    await asyncio.sleep(0)
            async for chunk in self._silence_until_answered():
                yield chunk
        await self._bot_done.wait()
        yield Hangup(self._clock)

    def _speech(self, item: AudioChunk) -> list[AudioChunk]:
        audio = resample(item, self.rate)
        lead = bytes(int(self.rate * LEAD_SILENCE) * 2)
        fast = bytes(int(self.rate * self._fast_silence) * 2)
        return [self._stamp(c) for c in split(AudioChunk(lead + audio.pcm + fast, self.rate), FRAME)]

    async def _silence_until_answered(self) -> AsyncIterator[AudioChunk]:
        frame = bytes(int(self.rate * FRAME) * 2)
        started, waited = time.monotonic(), 0.0
        while not self._bot_spoke.is_set() and waited < self._wait_limit:
            yield self._stamp(AudioChunk(frame, self.rate))
            waited += FRAME
            ahead = started + waited - time.monotonic()
            if ahead > 0:
                try:
                    await asyncio.wait_for(self._bot_spoke.wait(), ahead)
                except asyncio.TimeoutError:
                    pass

    def _stamp(self, chunk: AudioChunk) -> AudioChunk:
        stamped = AudioChunk(chunk.pcm, chunk.rate, self._clock)
        self._clock += chunk.seconds
        return stamped

    async def play(self, chunk: AudioChunk) -> None:
        self._bot_spoke.set()
        self.heard.append(AudioChunk(chunk.pcm, chunk.rate, self._clock))
        self._clock += chunk.seconds

    async def flush(self) -> None:
        self._bot_done.set()

    def clear(self) -> None:
        pass  # the scripted caller never talks over the bot

    async def close(self) -> None:
        self._bot_done.set()
