"""SDP offer/answer for one audio stream (RFC 4566, RFC 3264): G.711 at 8 kHz plus keypad events.

We speak PCMU (payload type 0) and PCMA (8), 20 ms packets, and telephone-event (RFC 4733) at
whatever payload type the peer chose. Nothing else: video, SRTP and wideband codecs are declined.
"""
from __future__ import annotations

import ipaddress
import secrets
from dataclasses import dataclass, field
from typing import Optional

CODECS = {0: "PCMU", 8: "PCMA"}  # static payload types (RFC 3551)
DTMF_PAYLOAD = 101  # the one we offer; in an answer we follow the offer's
PTIME_MS = 20
_MIRROR = {"sendonly": "recvonly", "recvonly": "sendonly", "inactive": "inactive", "sendrecv": "sendrecv"}


class BadSdp(ValueError):
    """A session description we cannot read (400)."""


class NoCommonCodec(ValueError):
    """A readable offer with nothing we speak (488 Not Acceptable Here)."""


@dataclass(frozen=True)
class Media:
    """What was agreed for the audio stream: where to send it and in which payload types."""
    host: str
    port: int
    payload_type: int  # as on the wire (0 or 8, unless the offer mapped G.711 to a dynamic type)
    codec: str = "PCMU"  # PCMU | PCMA
    dtmf_payload_type: Optional[int] = None
    direction: str = "sendrecv"

    @property
    def on_hold(self) -> bool:
        return self.direction in ("sendonly", "inactive") or self.host in ("0.0.0.0", "::")


def parse(body: bytes) -> Media:
    """The audio stream of an offer or answer, with our preferred codec among those it lists."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise BadSdp("the session description is not UTF-8") from None
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines or not lines[0].startswith("v=0"):
        raise BadSdp("a session description starts with v=0")
    host, audio, found = None, None, False
    rtpmap: dict[int, str] = {}
    direction = "sendrecv"
    for line in lines:
        kind, _, value = line.partition("=")
        if kind == "m":
            if found:
                break  # only the first audio stream is ours; the others are declined by leaving them out
            audio, found = _media_line(value), value.startswith("audio ")
        elif kind == "c" and (host is None or found):
            host = _connection(value)
        elif kind == "a" and found:
            name, _, rest = value.partition(":")
            if name == "rtpmap":
                number, _, encoding = rest.partition(" ")
                if _ascii_digits(number):
                    rtpmap[int(number)] = encoding.strip().lower()
            elif name in _MIRROR:
                direction = name
    if not found or audio is None:
        raise NoCommonCodec("no audio stream offered")
    port, proto, formats = audio
    if host is None:
        raise BadSdp("no connection address (c=)")
    if port == 0 or proto not in ("RTP/AVP", "RTP/AVPF"):
        raise NoCommonCodec(f"audio offered as {proto} on port {port}; we take plain RTP/AVP")
    codec = next((pt for pt in formats if _encoding(pt, rtpmap) in ("pcmu/8000", "pcma/8000")), None)
    if codec is None:
        raise NoCommonCodec(f"none of payload types {formats} is G.711 (PCMU or PCMA) at 8 kHz")
    dtmf = next((pt for pt in formats if rtpmap.get(pt, "").startswith("telephone-event/8000")), None)
    name = "PCMU" if _encoding(codec, rtpmap) == "pcmu/8000" else "PCMA"
    return Media(host, port, codec, name, dtmf, direction)


def _ascii_digits(text: str) -> bool:
    # str.isdigit() is true for "²", which int() refuses; and int() of 5,000 digits raises (Python's limit)
    return text.isascii() and text.isdigit() and len(text) <= 10


def _media_line(value: str) -> tuple[int, str, list[int]]:
    parts = value.split()
    if len(parts) < 4 or not _ascii_digits(parts[1].split("/")[0]):
        raise BadSdp(f"bad media line m={value[:60]}")
    port = int(parts[1].split("/")[0])
    if port > 65535 or not all(_ascii_digits(p) and int(p) < 128 for p in parts[3:]):
        raise BadSdp(f"bad media line m={value[:60]}")
    return port, parts[2], [int(p) for p in parts[3:]]


def _connection(value: str) -> str:
    parts = value.split()
    if len(parts) < 3 or parts[0] != "IN" or parts[1] not in ("IP4", "IP6"):
        raise BadSdp(f"bad connection line c={value[:60]}")
    try:
        return str(ipaddress.ip_address(parts[2].split("/")[0]))
    except ValueError:
        raise BadSdp(f"the connection address {parts[2][:40]!r} is not an IP address") from None


def _encoding(pt: int, rtpmap: dict[int, str]) -> str:
    if pt in rtpmap:
        return rtpmap[pt]
    return f"{CODECS[pt].lower()}/8000" if pt in CODECS else ""


@dataclass
class Origin:
    """Our o= line in one call leg: the same session id throughout, its version one up each time (RFC 3264 §8)."""
    session: int = field(default_factory=lambda: secrets.randbelow(2**31))
    version: int = 0

    def next(self) -> str:
        self.version += 1
        return f"{self.session} {self.version}"


def answer(offer: bytes, host: str, port: int, origin: Origin) -> tuple[Media, bytes]:
    """Our answer to an offer: the agreed stream (toward the offerer) and the SDP body to send back."""
    media = parse(offer)
    ours = _MIRROR[media.direction]
    return media, describe(host, port, [(media.payload_type, media.codec)], media.dtmf_payload_type, origin, ours)


def offer(host: str, port: int, origin: Origin) -> bytes:
    """Our offer, for a call we place (to an agent's phone)."""
    return describe(host, port, [(0, "PCMU"), (8, "PCMA")], DTMF_PAYLOAD, origin)


def describe(host: str, port: int, codecs: list[tuple[int, str]], dtmf: Optional[int], origin: Origin,
             direction: str = "sendrecv") -> bytes:
    family = "IP6" if ":" in host else "IP4"
    formats = " ".join(str(pt) for pt, _ in codecs) + (f" {dtmf}" if dtmf is not None else "")
    lines = ["v=0", f"o=ivr {origin.next()} IN {family} {host}", "s=ivr", f"c=IN {family} {host}", "t=0 0",
             f"m=audio {port} RTP/AVP {formats}"]
    lines += [f"a=rtpmap:{pt} {name}/8000" for pt, name in codecs]
    if dtmf is not None:
        lines += [f"a=rtpmap:{dtmf} telephone-event/8000", f"a=fmtp:{dtmf} 0-15"]
    lines += [f"a=ptime:{PTIME_MS}", f"a={direction}"]
    return ("\r\n".join(lines) + "\r\n").encode()
