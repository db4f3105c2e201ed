"""A caller on a WebSocket media stream, the way Twilio carries one: 20 ms of mu-law every 20 ms
(silence when they say nothing), one `dtmf` message per key, marks echoed as the bot's audio
arrives, `stop` to hang up. Everything the bot sends is kept with its arrival time.

Apart from the benchmark (ivr/tools/bench_calls.py) because the media-stream tests and the
Asterisk stand-in drive the same caller without measuring anything."""
from __future__ import annotations

import asyncio
import base64
import json
import uuid
from typing import Any, Awaitable, Callable, Optional

from ivr.audio.pcm import PHONE_FRAME_BYTES as FRAME_BYTES
from ivr.audio.pcm import FRAME_SECONDS, PHONE_RATE, rms_dbfs, ulaw_decode, ulaw_encode
from ivr.events import AudioChunk

VOICE_DBFS = -40.0  # a frame this loud is the caller's voice (synthesizers pad with near silence)
KEY_GAP_SECONDS = 0.1  # between one key and the next, as a person keys them
TURN_TIMEOUT = 30.0  # a bot that has not answered or finished by then has failed this caller


class Talker:
    """The caller's side of a phone line: 20 ms of audio every 20 ms, silence between utterances,
    as a phone network sends it. `send` writes one frame of 16-bit 8 kHz audio; it ends the talking
    by raising ConnectionError when the line is gone."""

    def __init__(self, send: Callable[[bytes], Awaitable[None]]):
        self._send = send
        self._speech = bytearray()
        self._sent = 0  # bytes of caller audio sent so far
        self._milestones: list[tuple[int, asyncio.Future]] = []  # (once this many bytes are sent, when)

    async def say(self, audio: AudioChunk) -> tuple[float, float]:
        """Speak (8 kHz audio) in real time; returns when its first and last voiced frames were sent (loop clock)."""
        if audio.rate != PHONE_RATE:
            raise ValueError(f"a phone line carries {PHONE_RATE} Hz audio, not {audio.rate}")
        loop, at = asyncio.get_running_loop(), self._sent + len(self._speech)
        began, ended = voice_span(audio.pcm)
        self._milestones += [(at + began + 1, loop.create_future()), (at + ended, loop.create_future())]
        self._speech += audio.pcm
        return await self._milestones[-2][1], await self._milestones[-1][1]

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        due = loop.time()
        try:
            while True:
                frame = bytes(self._speech[:FRAME_BYTES]).ljust(FRAME_BYTES, b"\0")
                del self._speech[:FRAME_BYTES]
                await self._send(frame)
                self._sent += FRAME_BYTES
                while self._milestones and self._sent >= self._milestones[0][0]:
                    self._milestones.pop(0)[1].set_result(loop.time())
                due = max(due + FRAME_SECONDS, loop.time() - 0.2)
                await asyncio.sleep(max(0.0, due - loop.time()))
        except ConnectionError as error:
            for _, pending in self._milestones:
                pending.set_exception(ConnectionError(f"the line is gone: {error}"))
            self._milestones.clear()


class StreamCaller:
    """One caller on a media stream in Twilio's message format; everything the bot sends is kept
    with its arrival time (loop clock): `events` holds ("media", payload) / ("mark", name) / ("clear", None)."""

    def __init__(self, call_sid: Optional[str] = None, caller_number: Optional[str] = None):
        self.call_sid = call_sid or "CA" + uuid.uuid4().hex
        self.stream_sid = "MZ" + self.call_sid[2:]
        self.caller_number = caller_number
        self.events: list[tuple[float, str, Any]] = []
        self.prompts_done = 0  # `prompt-N` marks seen: the bot finished speaking and listens
        self.closed: Optional[tuple[int, str]] = None  # the server's close code and reason
        self.talker = Talker(self._send_frame)
        self._sequence = self._chunk = 0
        self._changed = asyncio.Event()
        self._tasks: list[asyncio.Task] = []
        self._ws = None

    async def connect(self, session, url: str) -> None:
        self._ws = await session.ws_connect(url, autoclose=True, max_msg_size=1 << 20)
        await self.send({"event": "connected", "protocol": "Call", "version": "1.0.0"})
        parameters = {"from": self.caller_number} if self.caller_number else {}
        await self.send({"event": "start", "streamSid": self.stream_sid, "start": {
            "streamSid": self.stream_sid, "accountSid": "AC" + "0" * 32, "callSid": self.call_sid,
            "tracks": ["inbound"], "customParameters": parameters,
            "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}}})
        self._tasks = [asyncio.create_task(self.talker.run()), asyncio.create_task(self._listen())]

    async def send(self, message: dict) -> None:
        self._sequence += 1
        await self._ws.send_str(json.dumps({**message, "sequenceNumber": str(self._sequence)}))

    async def say(self, audio: AudioChunk) -> tuple[float, float]:
        return await self.talker.say(audio)

    async def keys(self, digits: str) -> float:
        for n, key in enumerate(digits):
            if n:
                await asyncio.sleep(KEY_GAP_SECONDS)
            await self.send({"event": "dtmf", "streamSid": self.stream_sid, "dtmf": {"track": "inbound_track", "digit": key}})
        return asyncio.get_running_loop().time()

    async def bot_finished(self, after: int, timeout: float = TURN_TIMEOUT) -> float:
        """Wait for the bot to finish a reply (more than `after` prompts done); when it did."""
        await self.until(lambda: self.prompts_done > after, timeout)
        return [t for t, kind, name in self.events if kind == "mark" and name.startswith("prompt-")][after]

    async def first_audio_after(self, moment: float, timeout: float = TURN_TIMEOUT) -> float:
        """When the first of the bot's audio frames after `moment` arrived."""
        def first() -> Optional[float]:
            found = None
            for t, kind, _ in reversed(self.events):
                if t <= moment:
                    break
                found = t if kind == "media" else found
            return found
        await self.until(lambda: first() is not None, timeout)
        return first()

    async def until(self, condition: Callable[[], bool], timeout: float) -> None:
        async def wait():
            while not condition():
                if self.closed:
                    raise ConnectionError(f"the server closed the stream: {self.closed[0]} {self.closed[1]}")
                self._changed.clear()
                await self._changed.wait()
        await asyncio.wait_for(wait(), timeout)

    def heard(self, since: float = 0.0) -> bytes:
        """The bot's audio received since `since`, as 16-bit 8 kHz PCM."""
        return b"".join(ulaw_decode(base64.b64decode(p)) for t, kind, p in self.events if kind == "media" and t >= since)

    async def hang_up(self) -> None:
        if self._ws is not None and not self._ws.closed:
            try:
                await self.send({"event": "stop", "streamSid": self.stream_sid,
                                 "stop": {"accountSid": "AC" + "0" * 32, "callSid": self.call_sid}})
                await self._ws.close()
            except ConnectionError:
                pass
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _send_frame(self, pcm: bytes) -> None:
        self._chunk += 1
        await self.send({"event": "media", "streamSid": self.stream_sid, "media": {
            "track": "inbound", "chunk": str(self._chunk), "timestamp": str(self._chunk * 20),
            "payload": base64.b64encode(ulaw_encode(pcm)).decode("ascii")}})

    async def _listen(self) -> None:
        from aiohttp import WSMsgType

        loop = asyncio.get_running_loop()
        try:
            while True:
                message = await self._ws.receive()
                if message.type != WSMsgType.TEXT:
                    self.closed = (self._ws.close_code or 0, str(message.extra or ""))
                    return
                data, now = json.loads(message.data), loop.time()
                event = data.get("event")
                if event == "media":
                    self.events.append((now, "media", data["media"]["payload"]))
                elif event == "mark":
                    name = data["mark"]["name"]
                    self.events.append((now, "mark", name))
                    self.prompts_done += name.startswith("prompt-")
                    await self.send({"event": "mark", "streamSid": self.stream_sid, "mark": {"name": name}})
                elif event == "clear":
                    self.events.append((now, "clear", None))
                self._changed.set()
        finally:
            self.closed = self.closed or (self._ws.close_code or 0, "")
            self._changed.set()


def voice_span(pcm: bytes) -> tuple[int, int]:
    """Where the voice in 16-bit audio begins and ends (bytes), by 20 ms frames."""
    frames = [pcm[i:i + FRAME_BYTES] for i in range(0, len(pcm), FRAME_BYTES)]
    voiced = [n for n, frame in enumerate(frames) if rms_dbfs(frame) > VOICE_DBFS] or [0, len(frames) - 1]
    return voiced[0] * FRAME_BYTES, min(len(pcm), (voiced[-1] + 1) * FRAME_BYTES)


def voice_span(pcm: bytes) -> tuple[int, int]:
    """Where the voice in 16-bit audio begins and ends (bytes), by 20 ms frames."""
    frames = [pcm[i:i + FRAME_BYTES] for i in range(0, len(pcm), FRAME_BYTES)]
    voiced = [n for n, frame in enumerate(frames) if rms_dbfs(frame) > VOICE_DBFS] or [0, len(frames) - 1]
    return voiced[0] * FRAME_BYTES, min(len(pcm), (voiced[-1] + 1) * FRAME_BYTES)
