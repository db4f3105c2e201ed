"""A scripted caller: one item (WAV audio or keypad digits) per answer, on the call's own clock.

The caller normally waits for the bot to finish speaking, then speaks the next item and stays
silent until the bot answers. An item may instead barge in: the caller starts talking a set time
into the bot's prompt, and the bot's audio is then heard frame by frame alongside the caller's,
so the moment the call stops the prompt (clear) is measured on the same clock.
Speech arrives as fast as the call takes it; the silence after it passes in real time, as it would
on a line: the endpoint silence, a speculative decode's head start and the bot's thinking time are
all real, so the call's clock shows how long the caller really waited.
"""
from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import AsyncIterator, Optional, Sequence, Union

from ivr.audio.pcm import resample, rms_dbfs, split
from ivr.events import SAMPLE_WIDTH, AudioChunk, Dtmf
from ivr.transports.base import Hangup, Incoming

FRAME = 0.02
LEAD_SILENCE = 0.3
ONSET_DBFS = -40.0
# After speaking the caller stays quiet at least this long, even if the bot's audio (hold music)
# goes on meanwhile: long enough for the endpointer to hear the end of the utterance.
SETTLE = 1.0
TAIL = 0.06  # kept after the last loud frame: a word's fading end is still the word


@dataclass(frozen=True)
class StayOnLine:
    """The caller stays on the line, silent, for this long (on hold, waiting for a person)."""
    seconds: float


@dataclass(frozen=True)
class CallerItem:
    say: Union[AudioChunk, Dtmf, StayOnLine]
    barge_in_at: Optional[float] = None  # seconds into the bot's prompt; None waits for the bot to finish


@dataclass(frozen=True)
class BargeIn:
    item: int  # which caller item interrupted
    spoke_at: float  # when the caller started talking over the prompt
    stopped_at: Optional[float]  # when the bot's audio stopped (None: the prompt was not stopped)

    @property
    def stopped_after(self) -> Optional[float]:
        return None if self.stopped_at is None else self.stopped_at - self.spoke_at


def _onset(say: Union[AudioChunk, Dtmf, StayOnLine]) -> float:
    """Where the caller's voice begins in an item (synthesizers lead with some silence)."""
    if not isinstance(say, AudioChunk):
        return 0.0
    for frame in split(say, FRAME):
        if rms_dbfs(frame.pcm) > ONSET_DBFS:
            return frame.timestamp
    return 0.0


def _voice_end(audio: AudioChunk) -> float:
    """Where the caller's voice ends in an item (synthesizers trail off into silence)."""
    end = 0.0
    for frame in split(audio, FRAME):
        if rms_dbfs(frame.pcm) > ONSET_DBFS:
            end = frame.timestamp + FRAME
    return end or len(audio.pcm) / SAMPLE_WIDTH / audio.rate


class CallerFiles:
    def __init__(self, items: Sequence[Union[CallerItem, AudioChunk, Dtmf]], rate: int, wait_limit: float):
        self.rate = rate
        self._items = [i if isinstance(i, CallerItem) else CallerItem(i) for i in items]
        self._wait_limit = wait_limit  # longest the caller stays silent before hanging up
        self._clock = 0.0
        self._next = 0  # the caller item to say next
        self._speaking = False  # the caller is saying an item: what the bot plays now is no answer
        self._playing = bytearray()  # bot audio queued but not yet heard (only while a barge-in is due)
        self._bot_done = asyncio.Event()  # the bot finished a prompt and waits
        self._bot_spoke = asyncio.Event()  # the bot started answering since the caller last spoke
        self._drained = asyncio.Event()
        self.heard: list[AudioChunk] = []  # the bot's audio, as the caller heard it
        self.barge_ins: list[BargeIn] = []

    def now(self) -> float:
        return self._clock

    async def incoming(self) -> AsyncIterator[Incoming]:
        for index, item in enumerate(self._items):
            self._next = index
            if isinstance(item.say, StayOnLine):
                await self._bot_done.wait()
                async for chunk in self._silence(item.say.seconds, until=None):
                    yield chunk
                continue
            if item.barge_in_at is None:
                await self._bot_done.wait()
            else:
                await self._bot_spoke.wait()
                async for chunk in self._listening(item.barge_in_at):
                    yield chunk
                self.barge_ins.append(BargeIn(index, self._clock + _onset(item.say), None))
            self._bot_done.clear()
            self._bot_spoke.clear()
            self._speaking = True
            if isinstance(item.say, Dtmf):
                yield item.say
            else:
                for chunk in self._speech(item.say, lead=item.barge_in_at is None):
                    yield self._hear_bot(self._stamp(chunk))  # stamped as it is heard, not ahead of time
                    await asyncio.sleep(0)
            self._speaking = False
            self._next = index + 1  # what the bot plays from now on answers this item
            self._play_out()
            async for chunk in self._silence(self._wait_limit, until=self._bot_spoke, at_least=SETTLE):
                yield chunk
        self._next = len(self._items)
        await self._bot_done.wait()
        yield Hangup(self._clock)

    async def _listening(self, seconds: float) -> AsyncIterator[AudioChunk]:
        """The caller hears `seconds` of the prompt before talking over it."""
        for chunk in split(AudioChunk(bytes(int(self.rate * seconds) * SAMPLE_WIDTH), self.rate), FRAME):
            yield self._hear_bot(self._stamp(chunk))
            await asyncio.sleep(0)

    def _speech(self, item: AudioChunk, lead: bool) -> list[AudioChunk]:
        """The item up to shortly after its voice ends: a synthesizer's trailing silence is silence, and
        passes in real time after it (`_silence`), or the endpoint silence would go by before a
        speculative decode could even start."""
        audio = resample(item, self.rate)
        before = bytes(int(self.rate * LEAD_SILENCE) * SAMPLE_WIDTH) if lead else b""
        voice = audio.pcm[:int((_voice_end(audio) + TAIL) * self.rate) * SAMPLE_WIDTH]
        return split(AudioChunk(before + voice, self.rate), FRAME)

    async def _silence(self, limit: float, until: Optional[asyncio.Event],
                       at_least: float = 0.0) -> AsyncIterator[AudioChunk]:
        """Silence in real time, for `limit` seconds or, after `at_least`, until `until` is set (the bot answered)."""
        frame = bytes(int(self.rate * FRAME) * SAMPLE_WIDTH)
        started, waited = time.monotonic(), 0.0
        while not (until and until.is_set() and waited >= at_least) and waited < limit:
            yield self._hear_bot(self._stamp(AudioChunk(frame, self.rate)))
            waited += FRAME
            ahead = started + waited - time.monotonic()
            if ahead > 0:
                try:
                    await asyncio.wait_for((until or asyncio.Event()).wait(), ahead)
                except asyncio.TimeoutError:
                    pass

    def _stamp(self, chunk: AudioChunk) -> AudioChunk:
        stamped = AudioChunk(chunk.pcm, chunk.rate, self._clock)
        self._clock += chunk.seconds
        return stamped

    def _hear_bot(self, caller_frame: AudioChunk) -> AudioChunk:
        """While a barge-in is due, the bot's queued audio plays in step with the caller's frames."""
        if self._playing:
            size = len(caller_frame.pcm)
            self.heard.append(AudioChunk(bytes(self._playing[:size]), self.rate, caller_frame.timestamp))
            del self._playing[:size]
            if not self._playing:
                self._drained.set()
        return caller_frame

    def _play_out(self) -> None:
        """No barge-in is due any more: the rest of the prompt plays while the caller is silent. Left queued, it
        would wait for caller frames that never come (the caller waits for the bot to finish): a deadlock."""
        if self._playing and not self._barge_in_due():
            self.heard.append(AudioChunk(bytes(self._playing), self.rate, self._clock))
            self._clock += len(self._playing) / SAMPLE_WIDTH / self.rate
            self._playing.clear()
            self._drained.set()

    def _barge_in_due(self) -> bool:
        return self._next < len(self._items) and self._items[self._next].barge_in_at is not None

    async def play(self, chunk: AudioChunk) -> None:
        if not self._speaking:
            self._bot_spoke.set()
        if self._barge_in_due():
            self._drained.clear()
            self._playing += resample(chunk, self.rate).pcm
        else:
            self.heard.append(AudioChunk(chunk.pcm, chunk.rate, self._clock))
            self._clock += chunk.seconds

    async def flush(self) -> None:
        if self._playing:
            await self._drained.wait()
        self._bot_done.set()

    def clear(self) -> None:
        if self._playing and self.barge_ins and self.barge_ins[-1].stopped_at is None:
            last = self.barge_ins[-1]
            self.barge_ins[-1] = BargeIn(last.item, last.spoke_at, self._clock)
        self._playing.clear()
        self._drained.set()

    async def close(self) -> None:
        self._drained.set()
        self._bot_done.set()
