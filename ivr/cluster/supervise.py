"""Keeping the cluster's children running: a worker or the console that stops is started again.

A drained worker (SIGUSR1, exit status 0) is replaced at once: that is the rolling restart, one
`kill -USR1` per worker. One that crashed or was killed is started again after a pause, 1 s doubling to
30 s while it keeps failing, so a worker that cannot start does not spin the machine; the pause starts
over once it is up again. Each stop and each start is said in one line.
"""
from __future__ import annotations

import time
from typing import Awaitable, Callable

from ivr.cluster.processes import Child

FIRST_PAUSE_S, LONGEST_PAUSE_S = 1.0, 30.0


class Supervisor:
    def __init__(self, children: list[Child], start: Callable[[Child], Awaitable[None]],
                 say: Callable[[str], None]):
        """`start`: starts a child again and says where it runs (the same line as at the cluster's start)."""
        self.children, self._start, self._say = children, start, say
        self._pause: dict[str, float] = {}  # the last pause of a child that keeps failing
        self._due: dict[str, float] = {}  # when a stopped child starts again (time.monotonic)

    async def look(self) -> None:
        """Notice children that stopped, and start those whose pause is over."""
        now = time.monotonic()
        for child in self.children:
            if child.running:
                continue
            if child.name not in self._due:
                self._due[child.name] = now + self._stopped(child)
            if now >= self._due[child.name]:
                del self._due[child.name]
                await self._start(child)

    def up(self, name: str) -> None:
        """The child is serving again: its next failure pauses for the shortest time again."""
        self._pause.pop(name, None)

    def _stopped(self, child: Child) -> float:
        drained = child.process.returncode == 0
        pause = 0.0 if drained else min(self._pause.get(child.name, FIRST_PAUSE_S / 2) * 2, LONGEST_PAUSE_S)
        if not drained:
            self._pause[child.name] = pause
        worker = child.name.startswith("worker-")
        self._say(f"ivr cluster: {child.name} stopped ({child.describe_exit()}); "
                  + ("Kamailio sends its callers to the others; " if worker and not drained else "")
                  + ("starting a fresh one" if drained else f"starting it again in {pause:g} s"))
        return pause
