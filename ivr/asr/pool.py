"""The recognizer's decode workers, shared by every call in the process: finals before speculations.

A caller who has stopped talking waits for a final decode; a speculation (a decode started at a
pause) only might save that wait, and is thrown away when the caller goes on talking. Queued in
arrival order, 16 callers' speculations would sit in front of the finals their callers wait for,
so finals always go first, and a speculation is not queued at all when the workers are already
behind (it could not finish before the pause ends anyway).

The counts say where decoding time went: `ivr bench calls` prints them per step.

Decoding runs at a lower CPU priority (a higher nice value, per thread on Linux) than the rest of the
process: with every core busy decoding, the event loop that paces the bot's audio 20 ms at a time
must still get a core the moment it wakes, and a decode finishing a few ms later is not heard.
`lowered()` builds an engine on such a thread, so the engine's own worker threads (CTranslate2's)
inherit the priority; IVR_DECODER_NICE sets how much lower (0: as the rest).
"""
from __future__ import annotations

import heapq
import itertools
import os
import sys
import threading
from collections import Counter
from concurrent.futures import Future
from typing import Any, Callable, TypeVar

from ivr.errors import UserError

FINAL, SPECULATION = 0, 1  # lower goes first
NICE = "IVR_DECODER_NICE"
DEFAULT_NICE = 10  # CFS gives a nice-10 thread about a tenth of a nice-0 one's share when both want a core
Made = TypeVar("Made")


def decoder_nice() -> int:
    said = os.environ.get(NICE, str(DEFAULT_NICE))
    if not said.isdigit() or int(said) > 19:
        raise UserError(f"{NICE}={said}: give how much lower the decoders run, 0 to 19")
    return int(said)


def lower_this_thread(by: int) -> None:
    """Raise the calling thread's nice value by `by` (never needs privileges); Linux only, where nice is
    per thread: elsewhere it would lower the whole process, the audio loop included."""
    if by and sys.platform.startswith("linux"):
        me = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, me, min(19, os.getpriority(os.PRIO_PROCESS, me) + by))


def lowered(make: Callable[[], Made], by: int | None = None) -> Made:
    """`make()` run on a thread of lowered priority: the threads it starts (an engine's) inherit it."""
    made: Future = Future()

    def run() -> None:
        lower_this_thread(decoder_nice() if by is None else by)
        try:
            made.set_result(make())
        except BaseException as error:  # noqa: BLE001 - raised again in the caller's thread
            made.set_exception(error)

    threading.Thread(target=run, name="lowered-load", daemon=True).start()
    return made.result()


class DecodePool:
    def __init__(self, workers: int, name: str = "decoder", nice: int | None = None):
        if workers < 1:
            raise ValueError(f"a decode pool needs 1 worker or more, not {workers}")
        self.workers = workers
        self.nice = decoder_nice() if nice is None else nice
        self.counts: Counter = Counter()  # speculations started/skipped/cancelled/used/wasted, finals
        self._waiting: list[tuple[int, int, Future, Callable, tuple]] = []
        self._order = itertools.count()  # first come, first served within a priority
        self._changed = threading.Condition()
        self._running = 0
        for n in range(workers):
            threading.Thread(target=self._work, name=f"{name}-{n}", daemon=True).start()

    def submit(self, decode: Callable[..., Any], *args: Any, final: bool = True) -> Future:
        future: Future = Future()
        with self._changed:
            heapq.heappush(self._waiting, (FINAL if final else SPECULATION, next(self._order), future, decode, args))
            self._changed.notify()
        return future

    def promote(self, future: Future) -> None:
        """A speculation still waiting whose caller has now stopped talking: it is their final decode."""
        with self._changed:
            for n, (priority, order, queued, decode, args) in enumerate(self._waiting):
                if queued is future and priority != FINAL:
                    self._waiting[n] = (FINAL, order, queued, decode, args)
                    heapq.heapify(self._waiting)
                    return

    def waiting(self) -> int:
        """Decodes queued and not started."""
        with self._changed:
            return len(self._waiting)

    def behind(self) -> bool:
        """Every worker busy and decodes already waiting: a new speculation would only add to the wait."""
        with self._changed:
            return self._running >= self.workers and len(self._waiting) > 0

    def count(self, what: str) -> None:
        with self._changed:
            self.counts[what] += 1

    def snapshot(self) -> dict[str, int]:
        with self._changed:
            return dict(self.counts)

    def _work(self) -> None:
        lower_this_thread(self.nice)
        while True:
            with self._changed:
                while not self._waiting:
                    self._changed.wait()
                _, _, future, decode, args = heapq.heappop(self._waiting)
                if not future.set_running_or_notify_cancel():
                    continue  # cancelled while it waited: superseded by more speech
                self._running += 1
            try:
                future.set_result(decode(*args))
            except BaseException as error:  # noqa: BLE001 - the caller of result() sees it
                future.set_exception(error)
            finally:
                with self._changed:
                    self._running -= 1
