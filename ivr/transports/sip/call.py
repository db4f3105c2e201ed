"""A caller on the SIP line, as the Transport a call runs on (8 kHz, G.711 on the wire).

The listener (ivr/transports/sip/line.py) owns the SIP dialog; this object is the call's view of it:
caller audio and keys in, bot audio out, and the two things only the line can do, hang up (BYE)
and hand the caller over to an agent's phone (a bridge the line keeps up after the bot has left, or, for
a call that asked the caller back, until the agent hangs up: then the caller is the call's again).
"""
from __future__ import annotations

import asyncio
from typing import AsyncIterator, Awaitable, Callable

from ivr.audio.pcm import PHONE_RATE, resample
from ivr.events import AudioChunk
from ivr.transports.base import Incoming
from ivr.transports.sip.media import RtpSession
from ivr.transports.network_line import Inbox


class SipCall:
    rate = PHONE_RATE

    def __init__(self, media: RtpSession, hang_up: Callable[[], None],
                 reach: Callable[[str], Awaitable[bool]]):
        self._media, self._hang_up, self._reach = media, hang_up, reach
        self._inbox = Inbox(PHONE_RATE)  # the caller's audio, keys and hang-up, bounded
        self.bridged = False  # handed to an agent: the bot is out of the audio path
        self._comes_back = False  # when the agent hangs up first, the caller is the call's again (the survey)
        self._back = asyncio.Event()  # a new one each hand-over: a caller put through twice comes back twice
        self._dropped = False  # the agent's leg went silent on the network: no hang-up of theirs
        media.heard, media.keyed = self._inbox.audio, self._inbox.keys

    def now(self) -> float:
        return self._inbox.now()

    def keyed_by_info(self, key: str) -> None:
        if not self.bridged:
            self._inbox.keys(key)

    def hung_up(self) -> None:
        """The caller's side is gone (BYE, or nothing heard for too long)."""
        self._inbox.hang_up()

    def incoming(self) -> AsyncIterator[Incoming]:
        return self._inbox.incoming()

    async def play(self, chunk: AudioChunk) -> None:
        if not (self.bridged or self._inbox.closed):
            self._media.pacer.queue(resample(chunk, PHONE_RATE).pcm)

    async def flush(self) -> None:
        await self._media.pacer.drained()

    def clear(self) -> None:
        if not self.bridged:
            self._media.pacer.clear()

    async def close(self) -> None:
        """The call is over: hang up, unless the caller is with their agent. Then no call is left to take them
        back, so the line ends them together with the agent (as for a caller not asked back)."""
        if self.bridged:
            self._comes_back = False
        else:
            self._hang_up()

    async def hand_over(self, address: str, come_back: bool = False) -> bool:
        """Ring `address` (a SIP URI) and bridge the caller to it once answered; False if nobody answered.
        `come_back`: when the agent hangs up first, the caller is given back to the call (taken_back)."""
        if self._inbox.closed:
            return False
        self._comes_back, self._back, self._dropped = come_back, asyncio.Event(), False
        self.bridged = await self._reach(address)
        return self.bridged

    def taken_back(self) -> bool:
        """The agent hung up first: True when the caller is given back to the call (it asked so, and the caller
        is still there), their audio and keys to it again and the line's voice the bot's; else False."""
        if not (self.bridged and self._comes_back) or self._inbox.closed:
            return False
        self.bridged = self._comes_back = False
        self._media.heard, self._media.keyed = self._inbox.audio, self._inbox.keys
        self._media.pacer.clear()  # the agent's last words still queued for the caller
        self._back.set()
        return True

    def agent_dropped(self) -> None:
        """The agent's leg was lost on the network (no audio for too long), not hung up: their line ends next."""
        self._dropped = self.bridged

    async def back_from_agent(self) -> bool:
        """Once the caller is given back: True when the line to the agent dropped, False when the agent hung up."""
        await self._back.wait()
        return self._dropped
