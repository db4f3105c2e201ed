"""A caller on the SIP line, as the Transport a call runs on (8 kHz, G.711 on the wire).

The listener (ivr/transports/sip.py) owns the SIP dialog; this object is the call's view of it:
caller audio and keys in, bot audio out, and the two things only the line can do, hang up (BYE)
and hand the caller over to an agent's phone (a bridge the line keeps up after the bot has left).
"""
from __future__ import annotations

import asyncio
from typing import AsyncIterator, Awaitable, Callable

from ivr.audio.pcm import PHONE_RATE, resample
from ivr.events import AudioChunk, Dtmf
from ivr.transports.base import Hangup, Incoming
from ivr.transports.media import RtpSession

MAX_WAITING = 500  # 10 s of caller frames the call has not taken yet; more are dropped


class SipCall:
    rate = PHONE_RATE

    def __init__(self, media: RtpSession, hang_up: Callable[[], None],
                 reach: Callable[[str], Awaitable[bool]]):
        self._media, self._hang_up, self._reach = media, hang_up, reach
        self._incoming: asyncio.Queue[Incoming] = asyncio.Queue()
        self._started = asyncio.get_running_loop().time()
        self._heard_seconds = 0.0
        self._gone = False  # the caller hung up (or the line was lost)
        self.bridged = False  # handed to an agent: the bot is out of the audio path
        media.heard, media.keyed = self._heard, self._keyed

    def now(self) -> float:
        return asyncio.get_running_loop().time() - self._started

    def _heard(self, pcm: bytes) -> None:
        chunk = AudioChunk(pcm, PHONE_RATE, self._heard_seconds)
        self._heard_seconds += chunk.seconds
        if self._incoming.qsize() < MAX_WAITING:
            self._incoming.put_nowait(chunk)

    def _keyed(self, key: str) -> None:
        self._incoming.put_nowait(Dtmf(key))

    def keyed_by_info(self, key: str) -> None:
        if not self.bridged:
            self._keyed(key)

    def hung_up(self) -> None:
        """The caller's side is gone (BYE, or nothing heard for too long)."""
        if not self._gone:
            self._gone = True
            self._incoming.put_nowait(Hangup(self.now()))

    async def incoming(self) -> AsyncIterator[Incoming]:
        while True:
            item = await self._incoming.get()
            yield item
            if isinstance(item, Hangup):
                return

    async def play(self, chunk: AudioChunk) -> None:
        if not (self.bridged or self._gone):
            self._media.play(resample(chunk, PHONE_RATE).pcm)

    async def flush(self) -> None:
        await self._media.idle.wait()

    def clear(self) -> None:
        if not self.bridged:
            self._media.clear()

    async def close(self) -> None:
        self._gone = True
        if not self.bridged:  # a bridged caller stays on the line with their agent
            self._hang_up()

    async def hand_over(self, address: str) -> bool:
        """Ring `address` (a SIP URI) and bridge the caller to it once answered; False if nobody answered."""
        if self._gone:
            return False
        self.bridged = await self._reach(address)
        return self.bridged
