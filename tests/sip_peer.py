"""Test doubles at the edges of the SIP line: a raw SIP peer made of two UDP sockets (signalling and
RTP) whose every byte the test writes, and a stand-in bot that plays a tone and keeps what it heard.

The line itself, its Switchboard and every packet are real.
"""
from __future__ import annotations

import asyncio
import math
import random
import secrets
import struct
from dataclasses import dataclass, field
from typing import Iterator, Optional

import numpy as np

from ivr.audio.pcm import alaw_decode, alaw_encode, ulaw_decode, ulaw_encode
from ivr.events import AudioChunk, Dtmf
from ivr.transports.sip import rtp
from ivr.transports.base import Hangup
from ivr.transports.sip.message import SipMessage, parse

OFFER = ("v=0\r\no=peer 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
         "m=audio {port} RTP/AVP 0 8 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n"
         "a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\na=ptime:20\r\na=sendrecv\r\n")


def tone(seconds: float, rate: int = 8000, hz: float = 440.0) -> bytes:
    return b"".join(struct.pack("<h", int(8000 * math.sin(2 * math.pi * hz * i / rate)))
                    for i in range(int(seconds * rate)))


def noise(seconds: float, seed: int = 1) -> bytes:
    """A signal no 20 ms of which repeats another: frames out of order or twice would show."""
    return np.random.default_rng(seed).integers(-6000, 6000, int(seconds * 8000), dtype="<i2").tobytes()


class _Inbox(asyncio.DatagramProtocol):
    def __init__(self):
        self.queue: asyncio.Queue = asyncio.Queue()

    def datagram_received(self, data, addr):
        self.queue.put_nowait((data, addr))


@dataclass
class Dialog:
    call_id: str
    from_tag: str
    to: str = ""  # the To of the 200 OK, tag included
    cseq: int = 1
    remote_rtp: Optional[tuple] = None


class RawPeer:
    """A SIP phone written in the test: it says exactly what it is told to. On another loopback address
    (`host`, e.g. 127.0.0.2) it is a stranger to the calls of a peer on 127.0.0.1."""

    def __init__(self, line: tuple, user: str = "5551234", host: str = "127.0.0.1"):
        self.line, self.user, self.host = line, user, host

    async def open(self) -> "RawPeer":
        loop = asyncio.get_running_loop()
        self._sip, self._inbox = await loop.create_datagram_endpoint(_Inbox, local_addr=(self.host, 0))
        self._rtp, self._rtp_inbox = await loop.create_datagram_endpoint(_Inbox, local_addr=(self.host, 0))
        self.port = self._sip.get_extra_info("sockname")[1]
        self.rtp_port = self._rtp.get_extra_info("sockname")[1]
        return self

    def close(self) -> None:
        self._sip.close()
        self._rtp.close()

    # -- signalling ---------------------------------------------------------------------------------

    def send(self, data, to: Optional[tuple] = None) -> None:
        self._sip.sendto(data.encode() if isinstance(data, str) else data, to or self.line)

    async def receive(self, timeout: float = 3.0, skip_provisional: bool = False) -> SipMessage:
        while True:
            data, _ = await asyncio.wait_for(self._inbox.queue.get(), timeout)
            message = parse(data)
            if not (skip_provisional and message.status and message.status < 200):
                return message

    async def nothing_for(self, seconds: float) -> bool:
        try:
            await asyncio.wait_for(self._inbox.queue.get(), seconds)
            return False
        except asyncio.TimeoutError:
            return True

    def request(self, method: str, dialog: Dialog, body: str = "", content_type: str = "",
                branch: str = "", extra: str = "", uri: str = "") -> str:
        to = dialog.to or f"<sip:ivr@{self.line[0]}:{self.line[1]}>"
        lines = [f"{method} {uri or f'sip:ivr@{self.line[0]}:{self.line[1]}'} SIP/2.0",
                 f"Via: SIP/2.0/UDP {self.host}:{self.port};branch={branch or 'z9hG4bK' + secrets.token_hex(6)};rport",
                 "Max-Forwards: 70", f"From: \"Caller\" <sip:{self.user}@{self.host}:{self.port}>;tag={dialog.from_tag}",
                 f"To: {to}", f"Call-ID: {dialog.call_id}", f"CSeq: {dialog.cseq} {method}",
                 f"Contact: <sip:{self.user}@{self.host}:{self.port}>"]
        if content_type:
            lines.append(f"Content-Type: {content_type}")
        if extra:
            lines.append(extra)
        lines.append(f"Content-Length: {len(body.encode())}")
        return "\r\n".join(lines) + "\r\n\r\n" + body

    def new_dialog(self) -> Dialog:
        return Dialog(secrets.token_hex(8) + "@peer", secrets.token_hex(4))

    async def call(self, offer: Optional[str] = None) -> tuple[Dialog, list[SipMessage]]:
        """INVITE the line and ACK its final answer; the dialog and every response, in order."""
        dialog = self.new_dialog()
        branch = "z9hG4bK" + secrets.token_hex(6)
        self.send(self.request("INVITE", dialog, offer or OFFER.format(port=self.rtp_port), "application/sdp",
                               branch=branch))
        responses = [await self.receive()]
        while responses[-1].status < 200:
            responses.append(await self.receive())
        final = responses[-1]
        dialog.to = final.get("To")
        if final.status < 300:
            dialog.remote_rtp = _rtp_address(final.body)
            self.send(self.request("ACK", dialog))
        else:
            self.send(self.request("ACK", dialog, branch=branch))
        return dialog, responses

    def hang_up(self, dialog: Dialog) -> None:
        dialog.cseq += 1
        self.send(self.request("BYE", dialog))

    def respond(self, request: SipMessage, status: int, reason: str, to_tag: str = "", body: str = "") -> None:
        to = request.get("To") + (f";tag={to_tag}" if to_tag else "")
        headers = [f"Via: {v}" for v in request.all("Via")] + [
            f"From: {request.get('From')}", f"To: {to}", f"Call-ID: {request.call_id}", f"CSeq: {request.get('CSeq')}",
            f"Contact: <sip:agent@{self.host}:{self.port}>"]
        if body:
            headers.append("Content-Type: application/sdp")
        self.send(f"SIP/2.0 {status} {reason}\r\n" + "\r\n".join(headers) +
                  f"\r\nContent-Length: {len(body)}\r\n\r\n{body}")

    # -- audio ---------------------------------------------------------------------------------------

    def send_rtp(self, packet: rtp.RtpPacket, to: Optional[tuple] = None) -> None:
        self._rtp.sendto(bytes(packet), to)

    def send_audio(self, pcm: bytes, to: tuple, first_sequence: int = 1, ssrc: int = 77, order=None,
                   payload_type: int = 0) -> None:
        """PCM as 20 ms G.711 packets, all at once (in `order`, a list of frame indexes, if given)."""
        frames = [pcm[i:i + 320] for i in range(0, len(pcm), 320)]
        encode = ulaw_encode if payload_type == 0 else alaw_encode
        for index in (order if order is not None else range(len(frames))):
            self.send_rtp(rtp.RtpPacket(payload_type, first_sequence + index, 160 * index, ssrc,
                                        encode(frames[index])), to)

    async def rtp_bytes(self, seconds: float) -> int:
        """How many bytes of datagrams reach this peer's RTP port within `seconds`."""
        loop = asyncio.get_running_loop()
        until, total = loop.time() + seconds, 0
        while (left := until - loop.time()) > 0:
            try:
                data, _ = await asyncio.wait_for(self._rtp_inbox.queue.get(), left)
            except asyncio.TimeoutError:
                break
            total += len(data)
        return total

    async def heard(self, seconds: float) -> bytes:
        """The line's audio that arrives within `seconds`, decoded, in arrival order."""
        loop = asyncio.get_running_loop()
        until, pcm = loop.time() + seconds, bytearray()
        while (left := until - loop.time()) > 0:
            try:
                data, _ = await asyncio.wait_for(self._rtp_inbox.queue.get(), left)
            except asyncio.TimeoutError:
                break
            packet = rtp.parse(data)
            if packet.payload_type in (0, 8):
                pcm += (ulaw_decode if packet.payload_type == 0 else alaw_decode)(packet.payload)
        return bytes(pcm)


def garbage(rng: random.Random, valid: list[bytes], count: int) -> Iterator[bytes]:
    """Datagrams a SIP port may get from a broken or hostile peer: random bytes, RTP where SIP is
    expected, and real SIP messages with bytes changed, cut out or put in."""
    for index in range(count):
        kind = index % 4
        if kind == 0:
            yield rng.randbytes(rng.randint(0, 1400))
        elif kind == 1:
            yield bytes(rtp.RtpPacket(rng.choice([0, 8, 101, 13]), rng.randrange(65536), rng.randrange(2**32),
                                      rng.randrange(2**32), rng.randbytes(rng.randint(0, 200))))
        else:
            data = bytearray(rng.choice(valid))
            for _ in range(rng.randint(1, 8)):
                at, choice = rng.randrange(len(data)), rng.random()
                if choice < 0.4:
                    data[at] = rng.randrange(256)
                elif choice < 0.7:
                    del data[at:at + rng.randint(1, 20)]
                else:
                    data[at:at] = rng.choice([b"\r\n", b":", b";", b"<", b"\x00", b"999999999", b"SIP/2.0 "])
            yield bytes(data)


def valid_messages(peer: "RawPeer") -> list[bytes]:
    """One of each request the line takes, outside any call, and a stray response: what garbage is made of."""
    requests = [peer.request(m, peer.new_dialog(), OFFER.format(port=peer.rtp_port) if m == "INVITE" else "",
                             "application/sdp" if m == "INVITE" else "").encode()
                for m in ("INVITE", "OPTIONS", "BYE", "INFO", "ACK", "CANCEL")]
    return requests + [b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1;branch=z9hG4bKx\r\nFrom: <sip:a@b>;tag=1\r\n"
                       b"To: <sip:c@d>\r\nCall-ID: x\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"]


def _rtp_address(body: bytes) -> tuple:
    text = body.decode()
    host = next(line.split()[-1] for line in text.splitlines() if line.startswith("c="))
    port = int(next(line.split()[1] for line in text.splitlines() if line.startswith("m=audio")))
    return host, port


# -- the stand-in bot ------------------------------------------------------------------------------------

@dataclass
class ToneCall:
    """Plays a tone, then listens until the caller hangs up or the test ends the call (`finish`)."""
    transport: object
    channel: str
    caller_number: Optional[str]
    call_id: str = ""
    heard: bytearray = field(default_factory=bytearray)
    keys: str = ""
    hung_up: bool = False
    agent: Optional[str] = None  # hand the caller over to this SIP address when finished
    handed_over: Optional[bool] = None

    def __post_init__(self):
        self.finish = asyncio.Event()
        self.ended = asyncio.Event()

    async def run(self):
        listening = asyncio.create_task(self._listen())
        try:
            await self.transport.play(AudioChunk(tone(0.6), 8000))
            await self.transport.flush()
            await asyncio.wait({listening, asyncio.create_task(self.finish.wait())},
                               return_when=asyncio.FIRST_COMPLETED)
            if self.agent and not self.hung_up:
                self.handed_over = await self.transport.hand_over(self.agent)
        finally:
            listening.cancel()
            await self.transport.close()
            self.ended.set()

    async def _listen(self):
        async for item in self.transport.incoming():
            if isinstance(item, Hangup):
                self.hung_up = True
            elif isinstance(item, Dtmf):
                self.keys += item.digits
            else:
                self.heard += item.pcm


class ToneBot:
    def __init__(self):
        self.calls: list[ToneCall] = []
        self.agent: Optional[str] = None

    def call(self, transport, channel, caller_number=None):
        call = ToneCall(transport, channel, caller_number, call_id=f"tone-{len(self.calls)}", agent=self.agent)
        self.calls.append(call)
        return call
