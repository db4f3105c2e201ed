"""A caller's side of a phone call as a libpcap file: G.711 mu-law RTP packets of a spoken request, and
keypad presses as RFC 4733 telephone-events, one 20 ms packet a tick. SIPp plays such a file into a
call (`<exec play_pcap_audio=...>`), rewriting only the addresses and ports, at the pace of the
packets' capture times.

The bytes are written here with `struct` (libpcap's file format, Ethernet, IPv4, UDP and RTP
headers) rather than through a packet library: the layout is small and fixed, and SIPp reads only
the UDP payload and the capture times.
"""
from __future__ import annotations

import secrets
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Union

from ivr.audio.pcm import FRAME_SECONDS, PHONE_RATE, phone_channel, ulaw_encode
from ivr.events import AudioChunk

PCMU = 0  # RTP payload type (RFC 3551)
TELEPHONE_EVENT = 101  # the dynamic payload type the SIPp scenario offers for keys (ivr/tools/sipp.py)
KEYS = "0123456789*#"  # RFC 4733 events 0-11
SAMPLES_PER_FRAME = int(PHONE_RATE * FRAME_SECONDS)
KEY_FRAMES = 8  # a press of 160 ms, as a person presses a key
KEY_GAP_FRAMES = 6  # 120 ms between presses
END_REPEATS = 3  # the "end" packet is sent three times (RFC 4733 §2.5.1.4): a lost one does not lose the key
KEY_VOLUME = 10  # -10 dBm0, a usual tone level
MU_LAW_SILENCE = b"\xff"

_PCAP_HEADER = struct.Struct("<IHHiIII")  # magic, version 2.4, zone, accuracy, snap length, link type
_RECORD = struct.Struct("<IIII")  # seconds, microseconds, captured length, original length
_ETHERNET = struct.Struct("!6s6sH")
_IPV4 = struct.Struct("!BBHHHBBH4s4s")
_UDP = struct.Struct("!HHHH")
_RTP = struct.Struct("!BBHII")
_EVENT = struct.Struct("!BBH")
LINKTYPE_ETHERNET = 1
LOOPBACK = bytes([127, 0, 0, 1])
PORT = 6000  # any: SIPp puts the call's own media ports in


@dataclass(frozen=True)
class Silence:
    seconds: float


@dataclass(frozen=True)
class Keys:
    digits: str


Part = Union[AudioChunk, Silence, Keys]


def write_pcap(path: Path, parts: Iterable[Part]) -> float:
    """The parts one after another as one RTP stream (one SSRC, sequence and timestamps running on),
    written to `path`; returns how long it plays, in seconds."""
    stream = _Stream()
    for part in parts:
        if isinstance(part, Keys):
            stream.keys(part.digits)
        elif isinstance(part, Silence):
            stream.audio(MU_LAW_SILENCE * round(part.seconds * PHONE_RATE))
        else:
            stream.audio(ulaw_encode(phone_channel(part).pcm))
    path.write_bytes(_PCAP_HEADER.pack(0xA1B2C3D4, 2, 4, 0, 0, 65535, LINKTYPE_ETHERNET) + b"".join(stream.records))
    return stream.ticks * FRAME_SECONDS


class _Stream:
    """RTP packets on a 20 ms timeline, each wrapped as a captured Ethernet frame."""

    def __init__(self):
        self.ssrc, self.sequence, self.timestamp = secrets.randbits(32), secrets.randbits(16), secrets.randbits(32)
        self.ticks = 0
        self.records: list[bytes] = []

    def audio(self, mu_law: bytes) -> None:
        """G.711 frames of 160 samples; a short last frame is filled with silence."""
        for start in range(0, len(mu_law), SAMPLES_PER_FRAME):
            frame = mu_law[start:start + SAMPLES_PER_FRAME].ljust(SAMPLES_PER_FRAME, MU_LAW_SILENCE)
            self._packet(PCMU, frame, self.timestamp, marker=False)
            self._tick()

    def keys(self, digits: str) -> None:
        """Each key as one telephone-event: packets sharing the press's first timestamp, the duration
        growing, the last three marked "end"; silence frames between presses, as a phone keeps sending."""
        for digit in digits:
            if digit not in KEYS:
                raise ValueError(f"{digit!r} is not a phone key (0-9, * or #)")
            began = self.timestamp
            for frame in range(KEY_FRAMES):
                self._event(digit, began, (frame + 1) * SAMPLES_PER_FRAME, end=False, first=frame == 0)
                self._tick()
            for _ in range(END_REPEATS):
                self._event(digit, began, KEY_FRAMES * SAMPLES_PER_FRAME, end=True, first=False)
            self.audio(MU_LAW_SILENCE * SAMPLES_PER_FRAME * KEY_GAP_FRAMES)

    def _event(self, digit: str, began: int, duration: int, end: bool, first: bool) -> None:
        payload = _EVENT.pack(KEYS.index(digit), (0x80 if end else 0) | KEY_VOLUME, duration)
        self._packet(TELEPHONE_EVENT, payload, began, marker=first)

    def _tick(self) -> None:
        self.ticks += 1
        self.timestamp = (self.timestamp + SAMPLES_PER_FRAME) & 0xFFFFFFFF

    def _packet(self, payload_type: int, payload: bytes, timestamp: int, marker: bool) -> None:
        rtp = _RTP.pack(0x80, (0x80 if marker else 0) | payload_type, self.sequence, timestamp, self.ssrc) + payload
        self.sequence = (self.sequence + 1) & 0xFFFF
        self.records.append(_captured(self.ticks * FRAME_SECONDS, _udp_frame(rtp)))


def _udp_frame(payload: bytes) -> bytes:
    udp = _UDP.pack(PORT, PORT, _UDP.size + len(payload), 0) + payload  # checksum 0: none (SIPp computes its own)
    length = _IPV4.size + len(udp)
    header = _IPV4.pack(0x45, 0, length, 0, 0x4000, 64, 17, 0, LOOPBACK, LOOPBACK)
    ip = _IPV4.pack(0x45, 0, length, 0, 0x4000, 64, 17, _checksum(header), LOOPBACK, LOOPBACK)
    return _ETHERNET.pack(bytes(6), bytes(6), 0x0800) + ip + udp


def _captured(seconds: float, frame: bytes) -> bytes:
    whole, micro = divmod(round(seconds * 1_000_000), 1_000_000)
    return _RECORD.pack(whole, micro, len(frame), len(frame)) + frame


def _checksum(header: bytes) -> int:
    total = sum(struct.unpack(f"!{len(header) // 2}H", header))
    while total > 0xFFFF:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF
