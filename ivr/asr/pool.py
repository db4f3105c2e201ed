"""The recognizer's decode workers, shared by every call in the process: finals before speculations.

A caller who has stopped talking waits for a final decode; a speculation (a decode started at a
pause) only might save that wait, and is thrown away when the caller goes on talking. Queued in
arrival order, 16 callers' speculations would sit in front of the finals their callers wait for,
so finals always go first, and a speculation is not queued at all when the workers are already
behind (it could not finish before the pause ends anyway).

The counts say where decoding time went: `ivr bench calls` prints them per step.
"""
from __future__ import annotations

import heapq
import itertools
import threading
from collections import Counter
from concurrent.futures import Future
from typing import Any, Callable

FINAL, SPECULATION = 0, 1  # lower goes first


class DecodePool:
    def __init__(self, workers: int, name: str = "decoder"):
        if workers < 1:
            raise ValueError(f"a decode pool needs 1 worker or more, not {workers}")
        self.workers = workers
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
