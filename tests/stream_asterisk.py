"""Asterisk's side of an AudioSocket connection, written from the protocol for the tests.

Every message is a 3-byte header (kind; payload length, 2 bytes big-endian) and the payload:
0x01 the call's 16-byte UUID (first), 0x10 signed 16-bit 8 kHz mono audio (320 bytes per 20 ms),
0x03 one ASCII keypad digit, 0x00 hang-up, 0xff an error code.
"""
from __future__ import annotations

import asyncio
import uuid
from typing import Optional

from ivr.tools.stream_caller import Talker
from ivr.events import AudioChunk


def frame(kind: int, payload: bytes = b"") -> bytes:
    return bytes([kind]) + len(payload).to_bytes(2, "big") + payload


class AsteriskCaller:
    def __init__(self, call_uuid: Optional[uuid.UUID] = None):
        self.uuid = call_uuid or uuid.uuid4()
        self.received: list[tuple[float, int, bytes]] = []  # (arrival on the loop clock, kind, payload)
        self.talker = Talker(self._audio)
        self._changed = asyncio.Event()
        self._tasks: list[asyncio.Task] = []

    async def connect(self, host: str, port: int) -> None:
        self.reader, self.writer = await asyncio.open_connection(host, port)
        self.writer.write(frame(0x01, self.uuid.bytes))
        self._tasks = [asyncio.create_task(self.talker.run()), asyncio.create_task(self._listen())]

    async def say(self, audio: AudioChunk) -> tuple[float, float]:
        return await self.talker.say(audio)

    async def keys(self, digits: str) -> float:
        for key in digits:
            self.writer.write(frame(0x03, key.encode()))
            await asyncio.sleep(0.1)
        return asyncio.get_running_loop().time()

    def audio_times(self, since: float = 0.0) -> list[float]:
        return [t for t, kind, _ in self.received if kind == 0x10 and t >= since]

    def heard(self, since: float = 0.0) -> bytes:
        return b"".join(p for t, kind, p in self.received if kind == 0x10 and t >= since)

    async def bot_quiet(self, after: float, seconds: float = 0.6, timeout: float = 30.0) -> float:
        """AudioSocket has no marks: the bot has finished when its audio (begun after `after`) stops for `seconds`."""
        loop = asyncio.get_running_loop()

        async def wait():
            while True:
                times = self.audio_times(after)
                if times and loop.time() - times[-1] >= seconds:
                    return times[-1]
                await asyncio.sleep(0.05)
        return await asyncio.wait_for(wait(), timeout)

    async def hang_up(self) -> None:
        if not self.writer.is_closing():
            self.writer.write(frame(0x00))
            await self.writer.drain()
            self.writer.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _audio(self, pcm: bytes) -> None:
        if self.writer.is_closing():
            raise ConnectionResetError("closed")
        self.writer.write(frame(0x10, pcm))
        await self.writer.drain()

    async def _listen(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while True:
                header = await self.reader.readexactly(3)
                payload = await self.reader.readexactly(int.from_bytes(header[1:], "big"))
                self.received.append((loop.time(), header[0], payload))
        except (asyncio.IncompleteReadError, ConnectionError):
            self.received.append((loop.time(), -1, b""))  # the server closed the connection
