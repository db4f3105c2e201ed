"""A typed caller on the terminal (`ivr chat`): each line is one turn, understood as a transcript is.

There is no audio either way: the call's prompts reach the terminal through the call's `on_turn`
printer, and this line only carries what the caller types (an empty line is silence; "quit" or
end of input hangs up). The call, its queue, hold and record are the same as on a phone line.
"""
from __future__ import annotations

import asyncio
import sys
import time
from typing import AsyncIterator, Callable, Optional

from ivr.events import AudioChunk
from ivr.transports.base import Hangup, Incoming, Typed

HANG_UP = {"quit", "exit", "hang up", "/quit"}


ANSWER_WAIT_S = 3.0  # how long the next "you:" waits for the bot's answer (on hold there may be none)


def read_line() -> Optional[str]:
    try:
        return input("you: " if sys.stdin.isatty() else "")
    except EOFError:
        return None


class TypedLine:
    rate = 16000  # never used for audio; the endpointer wants a rate it knows

    def __init__(self, read: Callable[[], Optional[str]] = read_line):
        self._read = read
        self._started = time.monotonic()
        self._answered = asyncio.Event()  # the bot finished what it had to say: the caller's turn

    def now(self) -> float:
        return time.monotonic() - self._started

    async def incoming(self) -> AsyncIterator[Incoming]:
        loop = asyncio.get_running_loop()
        while True:
            try:  # the caller reads the bot's answer before typing the next line
                await asyncio.wait_for(self._answered.wait(), ANSWER_WAIT_S)
            except asyncio.TimeoutError:
                pass
            self._answered.clear()
            line = await loop.run_in_executor(None, self._read)
            if line is None or line.strip().lower() in HANG_UP:
                yield Hangup(self.now())
                return
            yield Typed(line)

    async def play(self, chunk: AudioChunk) -> None:
        return None

    async def flush(self) -> None:
        self._answered.set()

    def clear(self) -> None:
        return None

    async def close(self) -> None:
        sys.stdout.flush()


class NoVoice:
    """The bot's voice on a line with no audio: prompts are text only."""

    def render_sentences(self, text: str):
        return iter(())
