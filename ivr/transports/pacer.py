"""Bot audio out to a phone line, one 20 ms frame per tick: the one pacer of RTP, WebSocket media
streams and AudioSocket.

Why pace at all: a peer fed faster than it plays buffers the surplus, and then a barge-in cannot
silence the bot (the peer keeps playing what it holds). Sent on the clock, the peer never holds
more than a frame or two, so `clear()` silences the bot within a frame, and the phone's jitter
buffer is fed at the rate it plays.

One behaviour for every line:
- `queue(pcm)` adds 16-bit audio; chunks run on into each other (no silence between sentences),
  and `played` runs once per chunk after the frame carrying its last byte is sent (a media
  stream's mark). Over MAX_QUEUED_SECONDS waiting, the newest audio is dropped: a bot that queues
  that much has gone wrong, and the line must not grow without bound.
- `relay(pcm, latency)` is audio passed through from another leg (a bridge): the oldest is dropped
  so that no more than `latency` waits.
- `clear()` drops everything queued, at once, and marks the pacer idle; a frame not yet sent is not
  sent after it. `drained()` returns once nothing is queued or being sent.
- A tick late by up to FALLEN_BEHIND sends what it owes back to back (a scheduling hiccup); later
  than that (a stall), the clock starts again from now instead of sending a burst the peer would
  have to buffer.
- A line that must send every tick (RTP: silence when there is nothing to say, and its tick also
  reads the caller's audio) is `steady`; the others send only while audio is queued.
- A send that fails (the peer is gone) stops the pacer.

The clock is the event loop's (`LoopClock`); a test passes its own to drive ticks deterministically.
How late each tick came, over every line of the process, is kept in `TICKS` (a tick over 20 ms late
is a gap the caller hears): `ivr bench calls` reads it from the server's log.
"""
from __future__ import annotations

import asyncio
import logging
from collections import Counter, deque
from typing import Awaitable, Callable, Optional, Protocol

from ivr.audio.pcm import FRAME_SECONDS, frame_bytes
from ivr.events import SAMPLE_WIDTH

log = logging.getLogger(__name__)

MAX_QUEUED_SECONDS = 120.0  # bot audio waiting to be sent, at most
FALLEN_BEHIND = 0.2  # a tick this late starts the clock again rather than send a burst


class Lateness:
    """How late the pacers' ticks came, in whole milliseconds, over every line of the process."""

    def __init__(self):
        self.ms: Counter = Counter()

    def add(self, seconds: float) -> None:
        self.ms[min(round(seconds * 1000), 10_000)] += 1

    def snapshot(self) -> dict[str, int]:
        return {str(ms): n for ms, n in sorted(self.ms.items())}


TICKS = Lateness()


class Clock(Protocol):
    def time(self) -> float: ...

    async def sleep(self, seconds: float) -> None: ...


class LoopClock:
    """The running event loop's clock (monotonic)."""

    @staticmethod
    def time() -> float:
        return asyncio.get_running_loop().time()

    @staticmethod
    async def sleep(seconds: float) -> None:
        await asyncio.sleep(seconds)


class _Chunk:
    __slots__ = ("pcm", "told")

    def __init__(self, pcm: bytes, told: bool):
        self.pcm, self.told = bytearray(pcm), told  # told: `played` runs when it has all been sent


class Pacer:
    """`send` takes one frame (`frame_bytes(rate)` long; silence-padded at the end of the audio).

    `ready`, if given, says whether the audio may leave yet: while it is False the queue waits and a
    steady pacer sends silence (an RTP line that does not yet know where the caller is)."""

    def __init__(self, rate: int, send: Callable[[bytes], Awaitable[None]],
                 played: Optional[Callable[[], Awaitable[None]]] = None, *, steady: bool = False,
                 ready: Callable[[], bool] = lambda: True, clock: Optional[Clock] = None, name: str = "a line"):
        self.rate, self.frame_bytes = rate, frame_bytes(rate)
        self.silence = bytes(self.frame_bytes)
        self._max_bytes = int(rate * MAX_QUEUED_SECONDS) * SAMPLE_WIDTH
        self._send, self._played, self._steady, self._ready = send, played, steady, ready
        self._clock: Clock = clock or LoopClock()
        self.name = name
        self._chunks: deque[_Chunk] = deque()
        self.queued_bytes = 0
        self._queued, self._idle = asyncio.Event(), asyncio.Event()
        self._idle.set()
        self._told_full = False
        self.stopped = False
        self._task: Optional[asyncio.Task] = None

    def start(self) -> None:
        """Start the clock: a steady pacer ticks from now on (its line calls this once it can send);
        any other starts by itself with its first audio."""
        if self._task is None and not self.stopped:
            self._task = asyncio.create_task(self._run(), name=f"pacer {self.name}")

    # -- what to send ------------------------------------------------------------------------------

    def queue(self, pcm: bytes) -> None:
        if self.stopped or not pcm:
            return
        if self.queued_bytes + len(pcm) > self._max_bytes:
            log.log(logging.DEBUG if self._told_full else logging.WARNING,
                    "%s: over %.0f s of bot audio queued; dropping the newest", self.name, MAX_QUEUED_SECONDS)
            self._told_full = True
            return
        self._add(_Chunk(pcm, told=self._played is not None))

    def relay(self, pcm: bytes, latency: float) -> None:
        """Audio from the other leg of a bridge, with no more than `latency` seconds of it waiting."""
        if self.stopped or not pcm:
            return
        self._add(_Chunk(pcm, told=False))
        excess = self.queued_bytes - int(latency * self.rate) * SAMPLE_WIDTH
        while excess > 0 and self._chunks:
            oldest = self._chunks[0]
            cut = min(excess, len(oldest.pcm))
            del oldest.pcm[:cut]
            self.queued_bytes -= cut
            excess -= cut
            if not oldest.pcm:
                self._chunks.popleft()

    def clear(self) -> None:
        """Barge-in: nothing queued is sent, from now."""
        self._chunks.clear()
        self.queued_bytes = 0
        self._told_full = False
        self._idle.set()

    async def drained(self) -> None:
        await self._idle.wait()

    @property
    def idle(self) -> bool:
        return self._idle.is_set()

    def close(self) -> None:
        """Stop now (the line is closing): nothing more is sent."""
        self.stopped = True
        self.clear()
        if self._task is not None:
            self._task.cancel()

    async def stop(self) -> None:
        """Stop, and return once the pacer's task has ended (no frame is written after this)."""
        self.close()
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)

    def _add(self, chunk: _Chunk) -> None:
        self._chunks.append(chunk)
        self.queued_bytes += len(chunk.pcm)
        self._idle.clear()
        self._queued.set()
        if not self._steady:
            self.start()

    def _take(self) -> tuple[Optional[bytes], int]:
        """The next frame (None if nothing may leave) and how many told chunks it finishes."""
        if not self._chunks or not self._ready():
            return None, 0
        frame, finished = bytearray(), 0
        while self._chunks and len(frame) < self.frame_bytes:
            chunk = self._chunks[0]
            part = chunk.pcm[:self.frame_bytes - len(frame)]
            del chunk.pcm[:len(part)]
            frame += part
            if not chunk.pcm:
                self._chunks.popleft()
                finished += chunk.told
        self.queued_bytes -= len(frame)
        return bytes(frame.ljust(self.frame_bytes, b"\0")), finished

    # -- the clock ---------------------------------------------------------------------------------

    async def _run(self) -> None:
        due: Optional[float] = None
        try:
            while True:
                if not self._chunks:
                    self._idle.set()
                    if not self._steady:
                        self._queued.clear()
                        due = None  # the clock starts again with the next audio
                        await self._queued.wait()
                        continue
                now = self._clock.time()
                if due is not None and now >= due:
                    TICKS.add(now - due)
                if due is None or now - due > FALLEN_BEHIND:
                    due = now
                elif due > now:
                    await self._clock.sleep(due - now)
                    continue  # look again: a clear may have come, or the sleep overslept (a stall)
                frame, finished = self._take()
                due += FRAME_SECONDS
                if frame is None and not self._steady:
                    continue
                await self._send(frame if frame is not None else self.silence)
                for _ in range(finished):
                    await self._played()
        except (ConnectionError, OSError, RuntimeError) as error:  # the peer is gone mid-prompt
            log.debug("%s: bot audio stopped: %s", self.name, error)
            self.stopped = True
            self.clear()
