"""An aiohttp application listening on host:port behind the guard: the agents' console and the media streams.

Here at the edge rather than beside the console because a phone line (ivr/transports/media_stream.py)
listens this way too, and transports import nothing above them.
"""
from __future__ import annotations

import errno
import os

from aiohttp import web

from ivr.transports.guard import KEEPALIVE_SECONDS, Guard
from ivr.transports.listeners import ListenError

SHUTDOWN_SECONDS = 3.0  # requests still open when stopping get this long


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
