"""What the network phone lines (WebSocket media streams, Asterisk AudioSocket) share.

A peer on the network may send anything at any speed. The Inbox takes caller audio only as fast as
a phone could speak it (a little ahead of the wall clock for network bursts) and never holds more
than a few seconds; a Budget counts a peer's bad messages until the line is cut. Bot audio leaves
through the Pacer every phone line shares (ivr/transports/pacer.py).
"""
from __future__ import annotations

import argparse
import asyncio
import logging
import time
from typing import AsyncIterator

from ivr.audio.pcm import FRAME_SECONDS, PHONE_RATE, resample
from ivr.events import SAMPLE_WIDTH, AudioChunk, Dtmf
from ivr.transports.base import Hangup, Incoming
from ivr.transports.pacer import Pacer

log = logging.getLogger(__name__)

INBOX_SECONDS = 5.0  # caller audio waiting for the call, at most; more means the call is not keeping up
AHEAD_SECONDS = 1.0  # how far a peer may send audio ahead of the wall clock (bursts after a network stall)
ERROR_BUDGET = 50  # bad messages a peer may send before its line is cut
KEYS = frozenset("0123456789*#ABCD")


def host_port(text: str) -> tuple[str, int]:
    """A `--flag HOST:PORT` value ([::1]:8090 for IPv6; port 0 picks a free one)."""
    host, sep, port = text.rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not HOST:PORT (e.g. 127.0.0.1:8090, [::1]:8090, 0.0.0.0:0)")
    return host, int(port)


class Budget:
    """A peer's allowance of bad messages: the first is logged as a warning, the rest quietly, then the line is cut."""

    def __init__(self, line: str, limit: int = ERROR_BUDGET):
        self.line, self.limit, self.spent = line, limit, 0

    @property
    def exhausted(self) -> bool:
        return self.spent >= self.limit

    def spend(self, problem: str) -> None:
        self.spent += 1
        level = logging.WARNING if self.spent in (1, self.limit) else logging.DEBUG
        log.log(level, "%s: %s (bad message %d of %d allowed)", self.line, problem, self.spent, self.limit)


class Inbox:
    """What the caller sends (audio, keys, hang-up) on its way to the call, on the call's clock."""

    def __init__(self, rate: int = PHONE_RATE):
        self.rate = rate
        self._started = time.monotonic()
        self._items: asyncio.Queue[Incoming] = asyncio.Queue(maxsize=int(INBOX_SECONDS / FRAME_SECONDS))
        self._heard = 0.0  # seconds of caller audio taken so far
        self.dropped = 0  # frames let go because the call was not keeping up
        self.closed = False

    def now(self) -> float:
        return time.monotonic() - self._started

    def audio(self, pcm: bytes) -> bool:
        """Take 16-bit caller audio; False when it runs ahead of real time (a flood, not a phone)."""
        seconds = len(pcm) / SAMPLE_WIDTH / self.rate
        if self._heard + seconds > self.now() + AHEAD_SECONDS:
            return False
        self._heard += seconds
        self._put(AudioChunk(pcm, self.rate, self.now()))
        return True

    def keys(self, digits: str) -> None:
        self._put(Dtmf(digits))

    def hang_up(self) -> None:
        if self.closed:
            return
        if self._items.full():
            self._items.get_nowait()  # the hang-up matters more than the oldest audio
        self._items.put_nowait(Hangup(self.now()))
        self.closed = True

    def _put(self, item: Incoming) -> None:
        if self.closed:
            return
        try:
            self._items.put_nowait(item)
        except asyncio.QueueFull:
            self.dropped += 1
            if self.dropped == 1:
                log.warning("a call is not keeping up with its caller's audio; dropping what does not fit")

    async def incoming(self) -> AsyncIterator[Incoming]:
        while True:
            item = await self._items.get()
            yield item
            if isinstance(item, Hangup):
                return


class PacedLine:
    """The Transport both network lines are: caller audio through an Inbox, bot audio through a Pacer."""

    rate = PHONE_RATE

    def __init__(self):
        self.inbox = Inbox(self.rate)
        self.pacer = Pacer(self.rate, self._send_frame, self._chunk_played, name=type(self).__name__)

    def now(self) -> float:
        return self.inbox.now()

    def incoming(self) -> AsyncIterator[Incoming]:
        return self.inbox.incoming()

    async def play(self, chunk: AudioChunk) -> None:
        self.pacer.queue(resample(chunk, self.rate).pcm)

    async def flush(self) -> None:
        await self.pacer.drained()

    def clear(self) -> None:
        self.pacer.clear()

    async def gone(self) -> None:
        """The peer hung up or its connection ended: the call hears Hangup and stops talking."""
        self.inbox.hang_up()
        await self.pacer.stop()

    async def _send_frame(self, pcm: bytes) -> None:
        raise NotImplementedError

    async def _chunk_played(self) -> None:
        pass
