"""Asterisk AudioSocket: `ivr serve --audiosocket HOST:PORT`.

Asterisk's AudioSocket() application (or dialplan `Dial(AudioSocket/HOST:PORT/UUID)`) connects over
TCP and speaks in messages of a 3-byte header (kind, then the payload length, 2 bytes big-endian)
and a payload: 0x01 the call's UUID (16 bytes, always first), 0x10 audio (signed 16-bit 8 kHz mono
little-endian, 320 bytes every 20 ms), 0x03 a keypad digit (one ASCII character), 0x00 hang-up,
0xff an error (logged). The bot's audio goes back as 0x10 messages of 20 ms on the wall clock, and
a hang-up (0x00) ends the call from our side.

A byte stream has no message boundaries of its own: a length no AudioSocket message has means the
stream is garbage and the connection is closed; smaller mistakes spend the peer's budget.

Connections are checked when accepted, before a byte is read (ivr/transports/guard.py: --allow,
--max-per-address); one without its UUID within --start-timeout is closed by the guard. A
connection takes a call slot only when its UUID arrives.
"""
from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Optional

from ivr.transports.guard import Guard, ListenLimits, listen_limits
from ivr.transports.listeners import ListenError
from ivr.transports.network_line import KEYS, Budget, PacedLine, host_port

log = logging.getLogger(__name__)

CHANNEL = "audiosocket"
HANGUP, UUID, DTMF, AUDIO, ERROR = 0x00, 0x01, 0x03, 0x10, 0xFF
MAX_PAYLOAD_BYTES = 3200  # 200 ms of audio; Asterisk sends 320 (20 ms), and nothing else is longer than 16
IDLE_SECONDS = 10.0  # Asterisk sends audio every 20 ms; this long without a message, the call is gone


def message(kind: int, payload: bytes = b"") -> bytes:
    return bytes([kind]) + len(payload).to_bytes(2, "big") + payload


class AudioSocketLine(PacedLine):
    """One AudioSocket connection as a Transport."""

    def __init__(self, writer: asyncio.StreamWriter, call_id: str):
        self._writer, self.call_id = writer, call_id
        super().__init__()

    async def close(self) -> None:
        await self.pacer.stop()
        self.inbox.closed = True
        if not self._writer.is_closing():
            try:
                self._writer.write(message(HANGUP))
                await self._writer.drain()
            except ConnectionError:
                pass
            self._writer.close()

    async def _send_frame(self, pcm: bytes) -> None:
        self._writer.write(message(AUDIO, pcm))
        await self._writer.drain()


class _Connection:
    def __init__(self, listener: "AudioSocketListener", reader: asyncio.StreamReader,
                 writer: asyncio.StreamWriter, peer: str):
        self._listener, self._reader, self._writer = listener, reader, writer
        self.budget = Budget(f"AudioSocket from {peer}")
        self.line: Optional[AudioSocketLine] = None
        self._errors = 0  # error messages from Asterisk: the first is logged as a warning

    async def run(self) -> None:
        try:
            while not self.budget.exhausted:
                try:
                    kind, payload = await self._next()
                except asyncio.TimeoutError:
                    log.info("AudioSocket %s: silent too long; hung up", self._call())
                    return
                except (asyncio.IncompleteReadError, ConnectionError):
                    return  # the peer closed the connection: a hang-up
                except ValueError as error:  # a length no message has: we can no longer find message boundaries
                    log.warning("AudioSocket %s: %s; closing", self._call(), error)
                    return
                if kind == HANGUP or not self._take(kind, payload):
                    return
            log.warning("AudioSocket %s: cut off after %d bad messages", self._call(), self.budget.spent)
        finally:
            if self.line:
                self._listener.lines.pop(self.line.call_id, None)
                await self.line.gone()
            self._writer.close()

    def _call(self) -> str:
        return f"call {self.line.call_id}" if self.line else "connection"

    async def _next(self) -> tuple[int, bytes]:
        timeout = IDLE_SECONDS if self.line else None  # before the UUID, the guard's start deadline holds
        header = await asyncio.wait_for(self._reader.readexactly(3), timeout)
        kind, length = header[0], int.from_bytes(header[1:], "big")
        if length > MAX_PAYLOAD_BYTES:
            raise ValueError(f"a message of kind 0x{kind:02x} claims {length} bytes (at most {MAX_PAYLOAD_BYTES})")
        return kind, await asyncio.wait_for(self._reader.readexactly(length), timeout) if length else b""

    def _take(self, kind: int, payload: bytes) -> bool:
        """One message from the peer; False when the connection is to end."""
        if kind == UUID:
            return self._start(payload)
        if kind == ERROR:
            self._errors += 1
            log.log(logging.WARNING if self._errors == 1 else logging.DEBUG, "AudioSocket %s: Asterisk reports "
                    "error 0x%s (%d so far)", self._call(), payload[:4].hex() or "(no code)", self._errors)
        elif self.line is None:
            self.budget.spend(f"a message of kind 0x{kind:02x} before the UUID")
        elif kind == AUDIO:
            if len(payload) % 2:
                self.budget.spend(f"{len(payload)} bytes of 16-bit audio (an odd number)")
            elif not self.line.inbox.audio(payload):
                self.budget.spend("audio faster than real time")
        elif kind == DTMF:
            digit = payload.decode("ascii", "replace")
            if len(digit) == 1 and digit in KEYS:
                self.line.inbox.keys(digit)
            else:
                self.budget.spend(f"a DTMF message that is not one key ({payload[:8]!r})")
        else:
            self.budget.spend(f"a message of unknown kind 0x{kind:02x}")
        return True

    def _start(self, payload: bytes) -> bool:
        if self.line is not None:
            self.budget.spend("a second UUID")
            return True
        if len(payload) != 16:
            self.budget.spend(f"a UUID of {len(payload)} bytes (16 expected)")
            return True
        call_id = str(uuid.UUID(bytes=payload))
        if call_id in self._listener.lines:
            log.warning("AudioSocket call %s refused: it is already connected", call_id)
            return False
        if not self._listener.switchboard.has_room():
            log.warning("AudioSocket call %s refused: all %d lines busy", call_id, self._listener.switchboard.max_calls)
            self._writer.write(message(HANGUP))
            return False
        Guard.started(self._writer.transport)  # its start deadline is lifted; it is never closed for a newer one
        self.line = AudioSocketLine(self._writer, call_id)
        self._listener.lines[call_id] = self.line
        self._listener.switchboard.answer(self.line, CHANNEL, None, call_id=call_id)
        return True


class AudioSocketListener:
    """tcp://HOST:PORT for Asterisk's AudioSocket, for `ivr serve`: each connection a call on the switchboard."""

    def __init__(self, switchboard, host: str, port: int, allowed, limits: ListenLimits = ListenLimits()):
        self.switchboard = switchboard
        self._guard = Guard("AudioSocket", limits.for_line(allowed, switchboard.max_calls, http=False))
        self._host, self._port = host, port
        self.lines: dict[str, AudioSocketLine] = {}  # live calls by UUID
        self._connections: set[asyncio.Task] = set()
        self._server = None  # the guard's Acceptor once started

    async def start(self) -> str:
        try:
            self._server = await self._guard.listen(self._protocol, self._host, self._port)
        except OSError as error:
            raise ListenError(f"cannot listen for AudioSocket on {self._host}:{self._port}: "
                              f"{error.strerror or error} (choose another with --audiosocket)") from None
        host, port = self._server.sockets[0].getsockname()[:2]
        return f"AudioSocket (Asterisk): tcp://{f'[{host}]' if ':' in host else host}:{port}"

    async def stop(self) -> None:
        if self._server:
            self._server.close()
            await self._server.wait_closed()
        for task in list(self._connections):
            task.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)

    def _protocol(self) -> asyncio.Protocol:
        """What asyncio.start_server makes per connection; built here so the guard's door can stand in front."""
        return asyncio.StreamReaderProtocol(asyncio.StreamReader(), self._connection)

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peername = writer.get_extra_info("peername")
        peer = str(peername[0]) if peername else ""  # allowed and under its cap: the guard checked at accept
        task = asyncio.current_task()
        self._connections.add(task)
        try:
            await _Connection(self, reader, writer, peer).run()
        finally:
            self._connections.discard(task)


def add_arguments(group) -> None:
    """Add this line's flag to `ivr serve`."""
    group.add_argument("--audiosocket", type=host_port, metavar="HOST:PORT",
                       help="answer Asterisk AudioSocket connections (8 kHz 16-bit) on HOST:PORT, e.g. 127.0.0.1:9092")


def wanted(args) -> bool:
    return getattr(args, "audiosocket", None) is not None


def listeners(args, switchboard, allowed) -> list:
    return [AudioSocketListener(switchboard, *args.audiosocket, allowed, listen_limits(args))] if wanted(args) else []
