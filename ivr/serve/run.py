"""`ivr serve`: one process, several listeners, stopped together by Ctrl-C or SIGTERM.

The agents' console is the first listener; the phone lines (SIP, media streams, AudioSocket) join the same `serve()`.
"""
from __future__ import annotations

import asyncio
import signal
from typing import Callable, Sequence

from ivr.transports.guard import REPEATED
from ivr.transports.listeners import Listener


async def serve(listeners: Sequence[Listener], announce: Callable[[str], None] = print) -> None:
    """Start every listener, run until SIGINT or SIGTERM, then stop them, last started first."""
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stopping.set)
    loop.set_exception_handler(REPEATED.loop_errors)  # EMFILE on accept and the like: counted, not a traceback each
    started: list[Listener] = []
    try:
        for listener in listeners:
            announce(await listener.start())
            started.append(listener)
        await stopping.wait()
    finally:
        for listener in reversed(started):
            await listener.stop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
