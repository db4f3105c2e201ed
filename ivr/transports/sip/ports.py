"""Where a call's audio is bound: any free port, or one of `ivr serve --rtp-ports LOW-HIGH`.

A range lets a firewall open just those ports to a worker, and keeps the workers of one machine
(`ivr cluster`) apart. Ports are taken in turn through the range, even ones only (RTP's convention,
RFC 3550 §11: the odd port above is RTCP's, which some phones send to even though the line does
not use it), so a port just let go rests before another call takes it. Each call uses one, and a
call put through to an agent's phone one more: a range of 2N ports holds N calls, N/2 bridged.
"""
from __future__ import annotations

import errno
import socket


class RtpPorts:
    def __init__(self, low: int = 0, high: int = 0):
        """`low` 0: any free port the system gives."""
        self.low, self.high = low, high
        self._next = low

    @classmethod
    def parse(cls, text: str | None) -> "RtpPorts":
        """A `--rtp-ports` value, LOW-HIGH; ValueError says what is wrong with it, in one line."""
        if not text:
            return cls()
        low, dash, high = text.partition("-")
        example = "e.g. --rtp-ports 20000-20999"
        if not dash or not low.strip().isdigit() or not high.strip().isdigit():
            raise ValueError(f"--rtp-ports {text!r} is not a range of ports LOW-HIGH ({example})")
        low_port, high_port = int(low), int(high)
        if not 1024 <= low_port <= high_port <= 65535:
            raise ValueError(f"--rtp-ports {text}: the ports must be within 1024-65535, the first not above the "
                             f"last ({example})")
        if high_port - low_port < 1:
            raise ValueError(f"--rtp-ports {text}: at least two ports, one even, are needed for a call ({example})")
        return cls(low_port + low_port % 2, high_port)

    @property
    def calls(self) -> int:
        """How many calls' audio the range holds at once (0: no limit of its own)."""
        return (self.high - self.low) // 2 + 1 if self.low else 0

    def bind(self, host: str) -> socket.socket:
        """A UDP socket for one call's audio, bound now so its port can go into the SDP; OSError when
        every port of the range is in use."""
        if not self.low:
            return _bound(host, 0)
        for _ in range(self.calls):
            port = self._next
            self._next = port + 2 if port + 2 <= self.high else self.low
            try:
                return _bound(host, port)
            except OSError as error:
                if error.errno != errno.EADDRINUSE:
                    raise
        raise OSError(errno.EADDRINUSE, f"every port of --rtp-ports {self.low}-{self.high} is in use")

    def __str__(self) -> str:
        return f"{self.low}-{self.high}" if self.low else "any free port"


def _bound(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        sock.bind((host, port))
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock
