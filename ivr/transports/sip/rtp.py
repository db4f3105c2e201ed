"""RTP packets on the wire (RFC 3550 §5.1): read one datagram, write one."""
from __future__ import annotations

import struct
from dataclasses import dataclass

HEADER = struct.Struct("!BBHII")


class BadPacket(ValueError):
    """Not an RTP packet (or an RTCP one, which we do not use)."""


@dataclass(frozen=True)
class RtpPacket:
    payload_type: int
    sequence: int
    timestamp: int
    ssrc: int
    payload: bytes
    marker: bool = False

    def __bytes__(self) -> bytes:
        return HEADER.pack(0x80, (0x80 if self.marker else 0) | self.payload_type, self.sequence & 0xFFFF,
                           self.timestamp & 0xFFFFFFFF, self.ssrc) + self.payload


def parse(data: bytes) -> RtpPacket:
    if len(data) < HEADER.size:
        raise BadPacket(f"{len(data)} bytes is shorter than an RTP header")
    first, second, sequence, timestamp, ssrc = HEADER.unpack_from(data)
    if first >> 6 != 2:
        raise BadPacket(f"RTP version {first >> 6}, not 2")
    if 200 <= second <= 207:
        raise BadPacket("an RTCP packet")
    offset = HEADER.size + 4 * (first & 0x0F)  # CSRC list
    if first & 0x10:  # header extension: 4 bytes, then its length in 32-bit words
        if len(data) < offset + 4:
            raise BadPacket("truncated header extension")
        offset += 4 + 4 * struct.unpack_from("!H", data, offset + 2)[0]
    end = len(data)
    if first & 0x20:  # padding: its length is the last byte
        if not data[-1]:
            raise BadPacket("padding of no bytes")
        end -= data[-1]
    if offset > end:
        raise BadPacket("header, extension and padding longer than the packet")
    return RtpPacket(second & 0x7F, sequence, timestamp, ssrc, bytes(data[offset:end]), bool(second & 0x80))
