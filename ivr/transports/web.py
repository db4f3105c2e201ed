"""`ivr serve`: one process, several listeners, stopped together by Ctrl-C or SIGTERM.

The agents' console is the first listener; the phone lines (SIP, media streams) join the same `serve()`.
"""
from __future__ import annotations

import asyncio
import errno
import os
import signal
from typing import Callable, Protocol, Sequence

from aiohttp import web

from ivr.transports.guard import KEEPALIVE_SECONDS, REPEATED, Guard

SHUTDOWN_SECONDS = 3.0  # requests still open when stopping get this long


class ListenError(Exception):
    """A listener could not start (e.g. its port is taken); the message says what to do."""


class Listener(Protocol):
    async def start(self) -> str:
        """Start listening; return what it listens on, for the person who started `ivr serve`."""

    async def stop(self) -> None:
        ...


class GuardedSite(web.TCPSite):
    """aiohttp's TCPSite with the guard's door in front of each connection (ivr/transports/guard.py).

    aiohttp has no request-head timeout, per-address limit or accept-time check of its own (3.9: its
    RequestHandler waits for a head for ever), so the guard accepts and hands each admitted connection to
    aiohttp's protocol factory; the rest (parsing, keep-alive, shutdown) is aiohttp's.
    """

    def __init__(self, runner: web.AppRunner, host: str, port: int, guard: Guard):
        super().__init__(runner, host, port)
        self._guard = guard

    async def start(self) -> None:
        await web.BaseSite.start(self)  # registers the site with its runner, as TCPSite.start does
        self._server = await self._guard.listen(self._runner.server, self._host, self._port, self._backlog)


class WebListener:
    """An aiohttp application on host:port (port 0: any free port), behind a guard (default: anyone may connect)."""

    def __init__(self, app: web.Application, host: str, port: int, what: str = "agents' console",
                 guard: Guard | None = None):
        # keepalive_timeout: an idle connection between requests is closed (aiohttp's default is 75 s)
        self._runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=SHUTDOWN_SECONDS,
                                     keepalive_timeout=KEEPALIVE_SECONDS)
        self._host, self._port, self._what = host, port, what
        self._guard = guard or Guard(what)

    async def start(self) -> str:
        await self._runner.setup()
        try:
            await GuardedSite(self._runner, self._host, self._port, self._guard).start()
        except OSError as error:
            await self._runner.cleanup()
            why = os.strerror(error.errno) if error.errno else str(error)
            hint = " (another ivr serve? choose another with --port)" if error.errno == errno.EADDRINUSE else ""
            raise ListenError(f"cannot listen on {self._host}:{self._port}: {why}{hint}") from None
        host, port = self._runner.addresses[0][:2]
        return f"{self._what}: {url(host, port)}"

    async def stop(self) -> None:
        await self._runner.cleanup()


def url(host: str, port: int) -> str:
    return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"


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
