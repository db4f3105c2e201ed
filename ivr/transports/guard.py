"""The door of every TCP listener of `ivr serve`: the agents' console, media streams, AudioSocket.

The guard accepts on the listening socket itself (Acceptor) and checks each connection the moment it
is accepted, before a byte of it is read:
- its address is in the listener's allowed networks (--allow for the phone lines, --console-allow);
- its address has fewer than --max-per-address connections open, so one host cannot take them all;
- the process keeps descriptors to spare: the guarded connections of every listener together stay
  under a budget below RLIMIT_NOFILE, so SIP, the databases and the models always have theirs. At the
  budget the oldest connection that has not yet started is closed to make room (a real peer starts
  within milliseconds, a half-open flood never does); only when every one has started is the new one
  refused.
A connection starts when its first HTTP request head has arrived (the console, a media stream's
upgrade) or when the line says so (AudioSocket: the call's UUID). One that has not started by its
deadline is closed. A refusal is an abort: the peer sees a reset, and nothing it sent is read.

Errors that come in floods (refusals, EMFILE on accept) are logged through RepeatedLog: one line per
kind per interval, with a count, so an attack cannot fill the disk or stall the loop on logging.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import resource
import socket
import struct
import time
from collections import Counter, OrderedDict
from dataclasses import dataclass
from typing import Callable, Optional

from ivr.transports.listeners import Networks, is_allowed

log = logging.getLogger(__name__)

PER_ADDRESS = 20  # connections one address may hold open on one listener
HEADER_SECONDS = 10.0  # an HTTP request head must have arrived by then (slowloris, half-sent requests)
START_SECONDS = 5.0  # a media stream or AudioSocket must have started its call by then
KEEPALIVE_SECONDS = 15.0  # an HTTP connection idle between requests this long is closed
LOG_INTERVAL_SECONDS = 10.0  # a repeated error is written at most once per this, with its count
HEAD_END = b"\r\n\r\n"
MAX_KINDS = 1000
ACCEPTS_PER_TURN = 32  # connections accepted per wake-up of the loop, before it serves the others again
ACCEPT_PAUSE_SECONDS = 1.0  # out of descriptors on accept: wait this long before trying again (asyncio's own)
RESET = struct.pack("ii", 1, 0)  # SO_LINGER on, 0 s: closing sends a reset
LINE_SPARES = 8  # a phone line's default per-address cap: its calls and this many starting


@dataclass(frozen=True)
class Limits:
    """What one listener lets in: `allowed` None is anyone; `start_seconds` None means no deadline."""
    allowed: Optional[Networks] = None
    per_address: int = PER_ADDRESS
    start_seconds: Optional[float] = HEADER_SECONDS
    http: bool = True  # started when the first request head ends; else when the line calls started()


@dataclass(frozen=True)
class ListenLimits:
    """The `ivr serve` flags every TCP listener shares (ivr/serve/lines.py): per-address cap and deadlines."""
    per_address: Optional[int] = None  # None: PER_ADDRESS, and for a phone line at least its calls + spares
    header_seconds: float = HEADER_SECONDS
    start_seconds: float = START_SECONDS

    def for_line(self, allowed: Optional[Networks], max_calls: int, http: bool) -> Limits:
        """A phone line's limits: one PBX or Twilio edge may carry every call, so its default cap has room for them."""
        cap = self.per_address or max(PER_ADDRESS, max_calls + LINE_SPARES)
        return Limits(allowed, cap, self.header_seconds if http else self.start_seconds, http)


def listen_limits(args) -> ListenLimits:
    """The listener flags of parsed `ivr serve` arguments; the defaults where they were not added (a line
    built by a test or a tool), so a line reads its own limits without knowing the serve runtime."""
    return ListenLimits(getattr(args, "max_per_address", None),
                        getattr(args, "header_timeout", ListenLimits.header_seconds),
                        getattr(args, "start_timeout", ListenLimits.start_seconds))


class RepeatedLog:
    """Log a kind of problem once per interval: the first at once; the rest counted, and the count written
    when the interval ends (on the running loop's timer), so a flood that stops is still told in full."""

    def __init__(self, logger: logging.Logger = log, interval: float = LOG_INTERVAL_SECONDS):
        self._logger, self._interval = logger, interval
        self._last: dict[str, float] = {}
        self._unsaid: Counter[str] = Counter()

    def log(self, kind: str, level: int, message: str, *args, exc_info=None) -> None:
        now = time.monotonic()
        if now - self._last.get(kind, -self._interval) < self._interval:
            if not self._unsaid[kind]:
                self._count_later(kind, level, message, args, self._last[kind] + self._interval - now)
            self._unsaid[kind] += 1
            return
        if len(self._last) > MAX_KINDS:  # kinds are few; this only bounds memory against a surprise
            self._last.clear()
        self._last[kind] = now
        self._logger.log(level, message, *args, exc_info=exc_info)

    def _count_later(self, kind: str, level: int, message: str, args: tuple, delay: float) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no loop (a test, a tool): the count stays unsaid
            return
        loop.call_later(max(0.0, delay), self._say_count, kind, level, message, args)

    def _say_count(self, kind: str, level: int, message: str, args: tuple) -> None:
        more = self._unsaid.pop(kind, 0)
        if more:
            self._last[kind] = time.monotonic()  # the count is this interval's line
            self._logger.log(level, "%d more in the last %g s like: " + message, more, self._interval, *args)

    def loop_errors(self, loop: asyncio.AbstractEventLoop, context: dict) -> None:
        """An event loop's exception handler, and the Acceptor's report of a failed accept (EMFILE: it stops
        accepting for a second, then serves again): one line per kind per interval. An OSError is one
        line; any other exception keeps its traceback, once per interval."""
        error = context.get("exception")
        kind = f"{context.get('message')}|{type(error).__name__}|{getattr(error, 'errno', '')}"
        trace = error if error is not None and not isinstance(error, OSError) else None
        self.log(kind, logging.ERROR, "%s: %s", context.get("message", "event loop error"), error or "", exc_info=trace)


REPEATED = RepeatedLog()


class Pool:
    """The process's descriptors for guarded connections, shared by every listener (descriptors are per process)."""

    def __init__(self, budget: Optional[int] = None):
        self._budget = budget
        self.open = 0
        self.waiting: OrderedDict[_Door, None] = OrderedDict()  # not started yet, oldest first

    @property
    def budget(self) -> int:
        if self._budget is None:  # measured at the first connection: the bot and stores are open by then
            soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
            soft = 4096 if soft == resource.RLIM_INFINITY else soft
            self._budget = max(8, soft - _open_descriptors() - max(96, soft // 8))
        return self._budget

    def make_room(self) -> bool:
        """Whether one more connection fits, closing the oldest connection that has not started if need be."""
        if self.open < self.budget:
            return True
        if not self.waiting:
            return False
        oldest = next(iter(self.waiting))
        oldest.close("closed for a newer connection: too many connections open that have not started")
        return True


def _open_descriptors() -> int:
    try:
        return len(os.listdir("/proc/self/fd"))
    except OSError:
        return 64  # no /proc: a loaded bot's usual count


POOL = Pool()


class Guard:
    """One listener's door: `listen(inner, host, port)` serves `inner` protocols behind it."""

    def __init__(self, what: str, limits: Limits = Limits(), pool: Pool = POOL):
        self.what, self.limits, self._pool = what, limits, pool
        self.by_address: Counter[str] = Counter()

    async def listen(self, inner: Callable[[], asyncio.Protocol], host: str, port: int,
                     backlog: int = 128) -> "Acceptor":
        """Listen on every address of host (as asyncio does: "localhost" is 127.0.0.1 and ::1) at port
        (0: any free one); OSError when it cannot."""
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        sockets: list[socket.socket] = []
        try:
            for family, address in dict.fromkeys((f, a[:2]) for f, _, _, _, a in found):
                sockets.append(socket.create_server(address, family=family, backlog=backlog))
        except OSError:
            for sock in sockets:
                sock.close()
            raise
        return Acceptor(self, inner, sockets)

    @staticmethod
    def started(transport: asyncio.BaseTransport) -> None:
        """The line's peer has started (e.g. an AudioSocket UUID): its deadline is lifted, it is never evicted."""
        door = transport.get_protocol()
        if isinstance(door, _Door):
            door.start()

    def refusal(self, peer: str) -> Optional[str]:
        """Why a connection from `peer` is refused at accept, or None: let it in. Each reason is one fixed
        text, so a flood of refusals is one log line per reason per interval."""
        if self.limits.allowed is not None and not is_allowed(peer, self.limits.allowed):
            return "not in the allowed networks"
        if self.by_address[peer] >= self.limits.per_address:
            return f"{self.limits.per_address} connections from it already open (--max-per-address)"
        if not self._pool.make_room():
            return "the process holds all the connections it may, every one started (descriptors kept for calls)"
        return None

    def admit(self, door: "_Door") -> None:
        self.by_address[door.peer] += 1
        self._pool.open += 1
        self._pool.waiting[door] = None

    def release(self, door: "_Door") -> None:
        self.by_address[door.peer] -= 1
        if self.by_address[door.peer] <= 0:
            del self.by_address[door.peer]
        self._pool.open -= 1
        self._pool.waiting.pop(door, None)

    def lift(self, door: "_Door") -> None:
        self._pool.waiting.pop(door, None)


class Acceptor:
    """Accepts on a listening socket itself, one connection at a time, and asks the guard about each at
    once. asyncio's own server accepts up to its backlog (128) per wake-up before any protocol sees one,
    so a flood could take every descriptor between two checks; here at most one is unchecked. Offers
    what aiohttp's site and our listeners use of asyncio.Server: `sockets`, `close()`, `wait_closed()`."""

    def __init__(self, guard: Guard, inner: Callable[[], asyncio.Protocol], sockets: list[socket.socket]):
        self._guard, self._inner, self.sockets = guard, inner, sockets
        self._loop = asyncio.get_running_loop()
        self._paused: dict[socket.socket, asyncio.TimerHandle] = {}
        self._tasks: set[asyncio.Task] = set()
        for sock in sockets:
            sock.setblocking(False)
            self._loop.add_reader(sock.fileno(), self._ready, sock)

    def close(self) -> None:
        for sock in self.sockets:
            if sock in self._paused:
                self._paused.pop(sock).cancel()
            elif sock.fileno() >= 0:
                self._loop.remove_reader(sock.fileno())
            sock.close()

    async def wait_closed(self) -> None:
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def _ready(self, sock: socket.socket) -> None:
        for _ in range(ACCEPTS_PER_TURN):  # then let the loop serve the connections it has
            try:
                conn, address = sock.accept()
            except (BlockingIOError, InterruptedError, ConnectionAbortedError):
                return
            except OSError as error:  # EMFILE and the like: stop accepting a while, as asyncio does, and say so once
                REPEATED.loop_errors(self._loop, {"message": f"{self._guard.what}: accept failed", "exception": error})
                self._loop.remove_reader(sock.fileno())
                self._paused[sock] = self._loop.call_later(ACCEPT_PAUSE_SECONDS, self._resume, sock)
                return
            self._take(conn, str(address[0]))

    def _take(self, conn: socket.socket, peer: str) -> None:
        why = self._guard.refusal(peer)
        if why:
            REPEATED.log(f"refused|{self._guard.what}|{why}", logging.WARNING, "%s: a connection from %s refused: %s",
                         self._guard.what, peer, why)
            with contextlib.suppress(OSError):  # the peer may have reset it already
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, RESET)  # a reset, not a polite close
            conn.close()  # nothing of it was read
            return
        conn.setblocking(False)
        door = _Door(self._guard, self._inner, peer)
        self._guard.admit(door)  # counted from accept, before its transport exists
        task = self._loop.create_task(self._connect(door, conn))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _connect(self, door: "_Door", conn: socket.socket) -> None:
        try:
            await self._loop.connect_accepted_socket(lambda: door, conn)
        except OSError:  # the peer left before its transport was made
            door.connection_lost(None)
            conn.close()

    def _resume(self, sock: socket.socket) -> None:
        del self._paused[sock]
        if sock.fileno() >= 0:
            self._loop.add_reader(sock.fileno(), self._ready, sock)


class _Door(asyncio.Protocol):
    """Stands between the transport and the listener's own protocol until the connection ends."""

    def __init__(self, guard: Guard, inner: Callable[[], asyncio.Protocol], peer: str):
        self._guard, self._make_inner, self.peer = guard, inner, peer
        self._inner: Optional[asyncio.Protocol] = None
        self._transport: Optional[asyncio.Transport] = None
        self._deadline: Optional[asyncio.TimerHandle] = None
        self._tail = b""  # the end of what has arrived, to find a request head's end split across reads
        self.admitted, self.started, self.closed = True, False, False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport
        if self.closed:  # made room for a newer one before its transport existed
            transport.abort()
            return
        seconds = self._guard.limits.start_seconds
        if seconds is not None and not self.started:
            self._deadline = asyncio.get_running_loop().call_later(seconds, self._late, seconds)
        self._inner = self._make_inner()
        self._inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        if not self.started and self._guard.limits.http:
            seen = self._tail + data
            if HEAD_END in seen:
                self.start()
            self._tail = seen[-(len(HEAD_END) - 1):]
        if self._inner is not None:
            self._inner.data_received(data)

    def eof_received(self) -> Optional[bool]:
        return self._inner.eof_received() if self._inner is not None else None

    def pause_writing(self) -> None:
        if self._inner is not None:
            self._inner.pause_writing()

    def resume_writing(self) -> None:
        if self._inner is not None:
            self._inner.resume_writing()

    def connection_lost(self, exc: Optional[Exception]) -> None:
        self._let_go()
        if self._inner is not None:
            self._inner.connection_lost(exc)

    def start(self) -> None:
        if not self.started:
            self.started = True
            self._tail = b""
            if self._deadline:
                self._deadline.cancel()
            if self.admitted:
                self._guard.lift(self)

    def close(self, why: str) -> None:
        """End the connection now; its place is free at once (the socket closes on the loop's next turn)."""
        REPEATED.log(f"closed|{self._guard.what}|{why}", logging.INFO, "%s: a connection from %s %s",
                     self._guard.what, self.peer, why)
        self.closed = True
        self._let_go()
        if self._transport is not None:
            self._transport.abort()

    def _late(self, seconds: float) -> None:
        if not self.started:
            self.close(f"closed: nothing started within {seconds:g} s")

    def _let_go(self) -> None:
        if self.admitted:
            self.admitted = False
            self._guard.release(self)
        if self._deadline:
            self._deadline.cancel()
