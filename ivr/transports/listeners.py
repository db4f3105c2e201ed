"""What every listener of `ivr serve` shares, kept here at the edge so the lines need nothing above them.

A listener (the console's web listener, SIP, media streams, AudioSocket) offers `start() -> str` and
`stop()`; the serve runtime (ivr/serve/) starts them together. One that cannot start raises ListenError
with a message the person running `ivr serve` can act on. Which peers a listener takes is a set of
networks (`--allow`, `--console-allow`, `--sip-trusted-proxy`).
"""
from __future__ import annotations

import ipaddress
from typing import Protocol, Sequence

DEFAULT_ALLOWED = ("127.0.0.0/8", "::1/128")

Networks = tuple  # of ipaddress.IPv4Network / IPv6Network


class ListenError(Exception):
    """A listener could not start (e.g. its port is taken); the message says what to do."""


class Listener(Protocol):
    async def start(self) -> str:
        """Start listening; return what it listens on, for the person who started `ivr serve`."""

    async def stop(self) -> None:
        ...


def allowed_networks(cidrs: Sequence[str] | None, flag: str = "--allow") -> Networks:
    """The --allow values as networks; a bad one is a clear error naming it."""
    try:
        return tuple(ipaddress.ip_network(c, strict=False) for c in (cidrs or DEFAULT_ALLOWED))
    except ValueError as error:
        raise ValueError(f"{flag} takes networks like 10.0.0.0/8 or 192.0.2.7: {error}") from None


def is_allowed(host: str, networks: Networks) -> bool:
    try:
        address = ipaddress.ip_address(host.split("%")[0])  # an IPv6 peer may carry its zone (fe80::1%eth0)
    except ValueError:
        return False
    return any(address in network for network in networks)
