"""WebSocket media streams in Twilio's message format: `ivr serve --media-stream HOST:PORT`.

A peer (Twilio's <Connect><Stream>, or anything speaking its messages) opens ws://HOST:PORT/media
and sends `connected`, `start` (streamSid, callSid, customParameters with the caller's `from`,
mediaFormat audio/x-mulaw 8000 Hz mono), then `media` (base64 mu-law, 20 ms each), `dtmf`,
`mark` (the echo of ours: that audio was heard) and finally `stop`. We send back `media` in
20 ms frames paced on the wall clock, a `mark` after each chunk of a prompt and one named
`prompt-N` when the bot has finished speaking and listens, and `clear` on barge-in.

Peers outside --allow are refused when their connection is accepted, before a byte is read, and so
are connections over --max-per-address (ivr/transports/guard.py, which also closes a request whose
head is late). A socket that has not started a stream within --start-timeout is closed; it never
holds a call slot, which a stream takes only at its start. A call beyond --max-calls is closed with
1013 and a reason, and a peer that keeps sending what we cannot use is cut off (1008) after its budget.
"""
from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
import re
from typing import Optional

from aiohttp import WSCloseCode, WSMsgType, web

from ivr.audio.pcm import ulaw_decode, ulaw_encode
from ivr.transports.guard import Guard, ListenLimits, listen_limits
from ivr.transports.network_line import KEYS, Budget, PacedLine, host_port
from ivr.transports.web import WebListener

log = logging.getLogger(__name__)

PATH = "/media"
CHANNEL = "websocket"
MAX_MESSAGE_BYTES = 64 * 1024  # a start with its custom parameters fits many times over
MAX_PAYLOAD_BYTES = 1600  # 200 ms of mu-law in one media message; Twilio sends 160 (20 ms)
IDLE_SECONDS = 10.0  # a live stream sends audio every 20 ms; this long without a message, it is gone
CLOSE_SECONDS = 3.0  # how long closing waits for the peer's close reply
MARK_WAIT_SECONDS = 2.0  # how long flush() waits for the peer to echo the marks of what it played
NAME = re.compile(r"[A-Za-z0-9_.:-]{1,64}")  # streamSid and callSid: Twilio's are 34 characters
CALLER_NUMBER = re.compile(r"\+?[0-9]{1,20}")
MEDIA_FORMAT = {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}


class MediaStream(PacedLine):
    """One stream as a Transport: what the peer sends in, the bot's audio out as Twilio messages."""

    def __init__(self, ws: web.WebSocketResponse, stream_sid: str):
        self._ws, self.stream_sid = ws, stream_sid
        self._marks = 0
        self._unheard: set[str] = set()  # marks sent and not yet echoed
        self._all_heard = asyncio.Event()
        self._all_heard.set()
        self._echoes_marks: Optional[bool] = None  # unknown until the peer echoes one, or fails to
        self._sending: set[asyncio.Task] = set()
        super().__init__()

    async def flush(self) -> None:
        await self.pacer.drained()
        if self.pacer.stopped:
            return
        await self._send_mark("prompt")
        if self._echoes_marks is False:
            return
        try:
            await asyncio.wait_for(self._all_heard.wait(), MARK_WAIT_SECONDS)
        except asyncio.TimeoutError:
            if self._echoes_marks is None:
                self._echoes_marks = False
                log.info("stream %s: the peer echoes no marks; prompts end when their audio is sent", self.stream_sid)

    def clear(self) -> None:
        super().clear()
        self._heard_all()
        task = asyncio.create_task(self._send({"event": "clear", "streamSid": self.stream_sid}))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def close(self) -> None:
        await self.pacer.stop()
        self.inbox.closed = True
        self._heard_all()
        await self._ws.close(code=WSCloseCode.OK, message=b"call ended")

    def heard_mark(self, name: str) -> None:
        self._echoes_marks = True
        self._unheard.discard(name)
        if not self._unheard:
            self._all_heard.set()

    async def gone(self) -> None:
        self._heard_all()
        await super().gone()

    def _heard_all(self) -> None:
        self._unheard.clear()
        self._all_heard.set()

    async def _send_frame(self, pcm: bytes) -> None:
        payload = base64.b64encode(ulaw_encode(pcm)).decode("ascii")
        await self._send({"event": "media", "streamSid": self.stream_sid, "media": {"payload": payload}})

    async def _chunk_played(self) -> None:
        await self._send_mark("audio")

    async def _send_mark(self, kind: str) -> None:
        self._marks += 1
        name = f"{kind}-{self._marks}"
        self._unheard.add(name)
        self._all_heard.clear()
        await self._send({"event": "mark", "streamSid": self.stream_sid, "mark": {"name": name}})

    async def _send(self, message: dict) -> None:
        try:
            await self._ws.send_str(json.dumps(message))
        except ConnectionError:
            if message["event"] != "media":  # the pacer stops on a failed media frame itself
                log.debug("stream %s: %s not sent, the peer is gone", self.stream_sid, message["event"])
            else:
                raise


class _Session:
    """One WebSocket from its first message to its close: the protocol's state machine."""

    def __init__(self, listener: "MediaStreamListener", ws: web.WebSocketResponse, peer: str):
        self._listener, self._ws, self._peer = listener, ws, peer
        self.budget = Budget(f"media stream from {peer}")
        self.stream: Optional[MediaStream] = None
        self._call_sid = ""
        self.closing: Optional[tuple[int, str]] = None  # (code, reason) once we decide to end it
        self._start_seconds = listener.start_seconds
        self._start_due = asyncio.get_running_loop().time() + self._start_seconds
        self._connected_said = False

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self.closing is None and not self._ws.closed:
                try:
                    message = await self._ws.receive(
                        timeout=IDLE_SECONDS if self.stream else max(0.001, self._start_due - loop.time()))
                except asyncio.TimeoutError:
                    self.closing = (WSCloseCode.GOING_AWAY, "no messages: the stream is gone" if self.stream
                                    else f"no start message within {self._start_seconds:g} s")
                    break
                if message.type == WSMsgType.TEXT:
                    self._message(message.data)
                elif message.type == WSMsgType.BINARY:
                    self.budget.spend("a binary frame (media streams send JSON text)")
                else:  # close, closing, closed, or an error aiohttp already closed on (e.g. too big)
                    break
                if self.budget.exhausted and self.closing is None:
                    self.closing = (WSCloseCode.POLICY_VIOLATION, f"{self.budget.spent} messages we cannot use")
            if self.closing and not self._ws.closed:
                await self._ws.close(code=self.closing[0], message=self.closing[1].encode()[:120])
        finally:
            if self.stream:
                self._listener.streams.pop(self._call_sid, None)
                await self.stream.gone()

    def _message(self, text: str) -> None:
        try:
            message = json.loads(text)
        except (ValueError, RecursionError):
            self.budget.spend("a message that is not JSON")
            return
        event = message.get("event") if isinstance(message, dict) else None
        handle = {"connected": self._connected, "start": self._start, "media": self._media, "dtmf": self._dtmf,
                  "mark": self._mark, "stop": self._stop}.get(event) if isinstance(event, str) else None
        if handle is None:
            self.budget.spend(f"an unknown event {str(event)[:40]!r}")
        elif event not in ("connected", "start") and self.stream is None:
            self.budget.spend(f"{event} before start")
        else:
            handle(message)

    def _connected(self, message: dict) -> None:
        if self._connected_said:  # says which protocol follows, once; there is only one
            self.budget.spend("connected again")
        self._connected_said = True

    def _start(self, message: dict) -> None:
        start = message.get("start")
        if self.stream is not None:
            return self.budget.spend("a second start")
        if not isinstance(start, dict):
            return self.budget.spend("start without its start object")
        stream_sid, call_sid = start.get("streamSid", message.get("streamSid")), start.get("callSid")
        if not all(isinstance(s, str) and NAME.fullmatch(s) for s in (stream_sid, call_sid)):
            return self.budget.spend("start without a usable streamSid and callSid")
        media_format = start.get("mediaFormat", MEDIA_FORMAT)
        if media_format != MEDIA_FORMAT:
            self.closing = (WSCloseCode.UNSUPPORTED_DATA, "only audio/x-mulaw at 8000 Hz, mono")
            return
        parameters = start.get("customParameters") or {}
        caller = parameters.get("from", parameters.get("From")) if isinstance(parameters, dict) else None
        caller = caller if isinstance(caller, str) and CALLER_NUMBER.fullmatch(caller) else None
        self.closing = self._listener.refusal(call_sid)
        if self.closing is None:
            self._call_sid = call_sid
            self.stream = MediaStream(self._ws, stream_sid)
            self._listener.answer(self.stream, call_sid, caller)

    def _media(self, message: dict) -> None:
        media = message.get("media")
        payload = media.get("payload") if isinstance(media, dict) else None
        if not isinstance(payload, str):
            return self.budget.spend("media without a payload string")
        if media.get("track", "inbound") not in ("inbound", "inbound_track"):
            return  # only the caller's side is ours to hear
        if len(payload) > MAX_PAYLOAD_BYTES * 4 // 3 + 4:
            return self.budget.spend(f"a media payload over {MAX_PAYLOAD_BYTES} bytes")
        try:
            audio = base64.b64decode(payload, validate=True)
        except (binascii.Error, ValueError):
            return self.budget.spend("a media payload that is not base64")
        if audio and not self.stream.inbox.audio(ulaw_decode(audio)):
            self.budget.spend("audio faster than real time")

    def _dtmf(self, message: dict) -> None:
        dtmf = message.get("dtmf")
        digit = dtmf.get("digit") if isinstance(dtmf, dict) else None
        if not (isinstance(digit, str) and len(digit) == 1 and digit in KEYS):
            return self.budget.spend("dtmf without a key 0-9, *, #, A-D")
        self.stream.inbox.keys(digit)

    def _mark(self, message: dict) -> None:
        mark = message.get("mark")
        name = mark.get("name") if isinstance(mark, dict) else None
        if not isinstance(name, str):
            return self.budget.spend("mark without a name")
        self.stream.heard_mark(name)

    def _stop(self, message: dict) -> None:
        self.closing = (WSCloseCode.OK, "stream stopped")


class MediaStreamListener:
    """ws://HOST:PORT/media for `ivr serve`: each stream a call on the switchboard."""

    def __init__(self, switchboard, host: str, port: int, allowed, limits: ListenLimits = ListenLimits()):
        self.switchboard, self.start_seconds = switchboard, limits.start_seconds
        self.streams: dict[str, MediaStream] = {}  # live calls by callSid
        self._sockets: set[web.WebSocketResponse] = set()
        app = web.Application()
        app.router.add_get(PATH, self._socket)
        what = "media streams (Twilio)"
        door = Guard(what, limits.for_line(allowed, switchboard.max_calls, http=True))
        self._web = WebListener(app, host, port, what, door)

    async def start(self) -> str:
        line = await self._web.start()  # "what: http://host:port/"
        return line.replace("http://", "ws://", 1) + PATH.lstrip("/")

    async def stop(self) -> None:
        await asyncio.gather(*(ws.close(code=WSCloseCode.GOING_AWAY, message=b"the IVR is stopping")
                               for ws in list(self._sockets)), return_exceptions=True)
        await self._web.stop()

    async def _socket(self, request: web.Request) -> web.StreamResponse:
        peername = request.transport.get_extra_info("peername") if request.transport else None
        peer = str(peername[0]) if peername else ""  # allowed and under its cap: the guard checked at accept
        ws = web.WebSocketResponse(max_msg_size=MAX_MESSAGE_BYTES, compress=False, timeout=CLOSE_SECONDS)
        await ws.prepare(request)
        self._sockets.add(ws)
        try:
            await _Session(self, ws, peer).run()
        finally:
            self._sockets.discard(ws)
        return ws

    def refusal(self, call_sid: str) -> Optional[tuple[int, str]]:
        """Why a started stream cannot be answered now (close code and reason), or None: answer it at once."""
        if call_sid in self.streams:
            return WSCloseCode.POLICY_VIOLATION, f"call {call_sid} already has a live stream"
        if not self.switchboard.has_room():
            log.warning("media stream for call %s refused: all %d lines busy", call_sid, self.switchboard.max_calls)
            return WSCloseCode.TRY_AGAIN_LATER, f"busy: {self.switchboard.max_calls} calls in progress, the most taken; try again later"
        return None

    def answer(self, stream: MediaStream, call_sid: str, caller: Optional[str]) -> None:
        self.streams[call_sid] = stream
        self.switchboard.answer(stream, CHANNEL, caller, call_id=call_sid)


def add_arguments(group) -> None:
    """Add this line's flag to `ivr serve`."""
    group.add_argument("--media-stream", type=host_port, metavar="HOST:PORT",
                       help=f"answer WebSocket media streams in Twilio's format at ws://HOST:PORT{PATH} "
                            "(mu-law 8 kHz; e.g. 127.0.0.1:8090)")


def wanted(args) -> bool:
    return getattr(args, "media_stream", None) is not None


def listeners(args, switchboard, allowed) -> list:
    return [MediaStreamListener(switchboard, *args.media_stream, allowed, listen_limits(args))] if wanted(args) else []
