"""`ivr serve`: one process, several listeners, stopped together by Ctrl-C or SIGTERM, or drained by SIGUSR1.

The agents' console is the first listener; the phone lines (SIP, media streams, AudioSocket) join the same `serve()`.

Two ways to stop, for two needs. SIGINT/SIGTERM: now (calls still running are hung up), what an operator
expects of Ctrl-C. SIGUSR1: drain, for a rolling restart behind a proxy: no new calls (SIP OPTIONS and
INVITE are answered 503, so Kamailio's dispatcher sends callers to the other workers), the current calls go
on to their end, then the process stops by itself. A SIGTERM while draining still stops at once.
"""
from __future__ import annotations

import asyncio
import signal
from typing import Awaitable, Callable, Optional, Sequence

from ivr.transports.guard import REPEATED
from ivr.transports.listeners import Listener

STOP_NOW = (signal.SIGINT, signal.SIGTERM)
DRAIN = signal.SIGUSR1


def remember_drain_requests() -> Callable[[], bool]:
    """SIGUSR1 while the process is still starting (the bot loads for many seconds) would kill it (the default
    action); from now on it is remembered instead, and `serve()` drains once its listeners are up."""
    asked: list[bool] = []
    signal.signal(DRAIN, lambda *_: asked.append(True))
    return lambda: bool(asked)


async def serve(listeners: Sequence[Listener], announce: Callable[[str], None] = print,
                drain: Optional[Callable[[], Awaitable[None]]] = None,
                drain_asked: Callable[[], bool] = lambda: False) -> None:
    """Start every listener, run until SIGINT or SIGTERM (or, on SIGUSR1, until `drain()` returns: no calls
    left), then stop them, last started first. `drain_asked`: whether a SIGUSR1 came before this."""
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in STOP_NOW:
        loop.add_signal_handler(signum, stopping.set)
    draining: list[asyncio.Task] = []

    def start_draining() -> None:
        if not draining:
            draining.append(asyncio.ensure_future(_drained_then(drain, stopping.set)))

    loop.add_signal_handler(DRAIN, start_draining)
    loop.set_exception_handler(REPEATED.loop_errors)  # EMFILE on accept and the like: counted, not a traceback each
    started: list[Listener] = []
    try:
        for listener in listeners:
            announce(await listener.start())
            started.append(listener)
        if drain_asked():
            start_draining()
        await stopping.wait()
    finally:
        for task in draining:
            task.cancel()
        for listener in reversed(started):
            await listener.stop()
        for signum in (*STOP_NOW, DRAIN):
            loop.remove_signal_handler(signum)
        signal.signal(DRAIN, signal.SIG_IGN)  # stopping already: a late drain request must not kill it midway


async def _drained_then(drain: Optional[Callable[[], Awaitable[None]]], stop: Callable[[], None]) -> None:
    if drain is not None:  # a console alone has no calls to finish
        await drain()
    stop()
