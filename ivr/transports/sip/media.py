"""One call leg's audio over RTP, on the phone lines' one Pacer (ivr/transports/pacer.py), steady:
every 20 ms a G.711 packet out from what was queued (silence when nothing is), and one 20 ms frame
of the peer's audio in, through a jitter buffer. Keypad events are passed on as they arrive.
Nothing here blocks.

Symmetric RTP, as a session border controller does it: audio goes only to the host the call's
signalling comes from. An SDP (offer, answer or re-INVITE) naming that host is followed; one naming
another host is not obeyed (else one INVITE could aim a call's audio at anyone): the bot's audio
waits until the peer's first valid packet from the signalling host, and goes back where that came
from (a phone behind NAT names its private address). Only a trusted proxy's SDP may name other hosts.
Packets from any other host are dropped. A line that stays silent (no packet at all) for RTP_TIMEOUT
is lost.
"""
from __future__ import annotations

import asyncio
import logging
import secrets
import socket
from typing import Callable, Optional

from ivr.audio.pcm import PHONE_RATE, alaw_decode, alaw_encode, ulaw_decode, ulaw_encode
from ivr.transports.pacer import Pacer
from ivr.transports.sip import rtp
from ivr.transports.sip.dtmf import KeypadEvents
from ivr.transports.sip.jitter import JitterBuffer
from ivr.transports.sip.sdp import Media

log = logging.getLogger(__name__)

RTP_TIMEOUT = 60.0
CODECS = {"PCMU": (ulaw_encode, ulaw_decode), "PCMA": (alaw_encode, alaw_decode)}


class RtpSession(asyncio.DatagramProtocol):
    def __init__(self, sock: socket.socket, media: Media, peer_host: str, trust_sdp: bool = False):
        """`peer_host`: where the call's signalling comes from; `trust_sdp`: it is a trusted proxy, whose
        SDP may name other hosts."""
        self.port = sock.getsockname()[1]
        self._sock, self._peer_host, self._trust_sdp = sock, peer_host, trust_sdp
        self._peer_hosts = {peer_host}  # whose packets are taken
        self._remote: Optional[tuple] = None  # where ours go; None until the SDP or a packet says
        self._told_not_obeyed = self._told_strangers = False
        self._transport: Optional[asyncio.DatagramTransport] = None
        self._closed = self._starting = False
        # Steady: a packet every 20 ms, silence when there is nothing to say; the bot's audio waits
        # until we know where the peer is (or it is on hold, when what is said is not sent).
        self.pacer = Pacer(PHONE_RATE, self._tick, steady=True, name=f"RTP {self.port}",
                           ready=lambda: self._remote is not None or self.media.on_hold)
        self._ssrc, self._sequence, self._timestamp = (secrets.randbits(32), secrets.randbits(16),
                                                       secrets.randbits(32))
        self._their_ssrc: Optional[int] = None
        self._jitter = JitterBuffer()
        self._keypad = KeypadEvents()
        self._last_heard = 0.0
        self.update(media)
        self.strangers = 0  # packets dropped for coming from someone else
        # Where the peer's audio, keys and silence go; a bridge points them at another leg.
        self.heard: Callable[[bytes], None] = lambda pcm: None
        self.keyed: Callable[[str], None] = lambda key: None
        self.lost: Callable[[], None] = lambda: None

    def update(self, media: Media) -> None:
        """A new answer or re-INVITE: the peer's address, codec or keypad payload type changed."""
        self.media = media
        self._encode, self._decode = CODECS[media.codec]
        if media.host in ("0.0.0.0", "::"):
            return  # on hold (RFC 2543 style): no address to follow
        if self._trust_sdp or media.host == self._peer_host:
            self._remote = (media.host, media.port)
            self._peer_hosts.add(media.host)
        elif not self._told_not_obeyed:
            self._told_not_obeyed = True
            log.info("RTP %s: the SDP names %s, not %s where the call comes from; audio goes only where "
                     "that host's packets come from", self.port, media.host, self._peer_host)

    async def start(self) -> None:
        if self._closed:  # the call ended before its audio started
            return
        loop = asyncio.get_running_loop()
        self._starting = True
        transport, _ = await loop.create_datagram_endpoint(lambda: self, sock=self._sock)
        if self._closed:  # ended while the endpoint was being made: its socket is the transport's to close
            transport.close()
            return
        self._transport = transport
        self._last_heard = loop.time()
        self.pacer.start()

    def close(self) -> None:
        self._closed = True
        self.pacer.close()
        if self._transport:
            self._transport.close()
        elif not self._starting:
            self._sock.close()

    # -- the 20 ms tick: our frame out, theirs in ---------------------------------------------------

    async def _tick(self, frame: bytes) -> None:
        self._send(frame)
        payload = self._jitter.get()
        self.heard(self._decode(payload) if payload else self.pacer.silence)
        now = asyncio.get_running_loop().time()
        if now - self._last_heard > RTP_TIMEOUT:
            self._last_heard = now
            log.info("RTP %s: nothing from %s for %.0f s; the line is lost", self.port, self._peer_host,
                     RTP_TIMEOUT)
            self.lost()

    def _send(self, pcm: bytes) -> None:
        if self._transport is None or self.media.on_hold or self._remote is None:
            return
        packet = rtp.RtpPacket(self.media.payload_type, self._sequence, self._timestamp, self._ssrc,
                               self._encode(pcm))
        self._sequence = (self._sequence + 1) & 0xFFFF
        self._timestamp = (self._timestamp + len(pcm) // 2) & 0xFFFFFFFF
        self._transport.sendto(bytes(packet), self._remote)

    # -- in: what the peer sends -----------------------------------------------------------------

    def datagram_received(self, data: bytes, addr) -> None:
        if addr[0] not in self._peer_hosts:
            self.strangers += 1
            if not self._told_strangers:
                self._told_strangers = True
                log.info("RTP %s: dropping packets from %s, who is not in this call", self.port, addr[0])
            return
        try:
            packet = rtp.parse(data)
        except rtp.BadPacket:
            return
        if packet.ssrc != self._their_ssrc:  # a new stream (first packet, or the peer restarted it)
            self._their_ssrc, self._jitter = packet.ssrc, JitterBuffer()
        self._remote = addr  # symmetric RTP: answer where the peer's audio comes from (NAT)
        self._last_heard = asyncio.get_running_loop().time()
        if packet.payload_type == self.media.dtmf_payload_type:
            key = self._keypad.key(packet.timestamp, packet.payload)
            if key:
                self.keyed(key)
        elif packet.payload_type == self.media.payload_type:
            self._jitter.put(packet.sequence, packet.payload)

    def error_received(self, exc: Exception) -> None:  # e.g. ICMP port unreachable: the peer is not there yet
        log.debug("RTP %s: %s", self.port, exc)
