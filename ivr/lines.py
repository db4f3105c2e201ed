"""The phone lines `ivr serve` answers on. Each line's module adds its own flag and listener.

A line module offers `add_arguments(parser)` and `listeners(args, switchboard, allowed) -> list`
of Listeners (ivr/console/serve.py: `start() -> str`, `stop()`), or none when its flag is unset.
"""
from __future__ import annotations

import argparse
import importlib
import ipaddress
from typing import Sequence

LINE_MODULES = ("ivr.transports.sip", "ivr.transports.media_stream", "ivr.transports.audiosocket")
DEFAULT_ALLOWED = ("127.0.0.0/8", "::1/128")

Networks = tuple  # of ipaddress.IPv4Network / IPv6Network


def add_arguments(parser: argparse.ArgumentParser) -> None:
    lines = parser.add_argument_group("phone lines (any of them loads the bot: Rasa, recognizer, voice)")
    lines.add_argument("--max-calls", type=int, default=16, metavar="N",
                       help="calls at once; one more is refused (SIP: 486 Busy Here). Default 16")
    lines.add_argument("--allow", action="append", metavar="CIDR",
                       help="peer networks whose calls are taken (repeatable; default 127.0.0.0/8 and ::1)")
    for module in LINE_MODULES:
        importlib.import_module(module).add_arguments(lines)


def allowed_networks(cidrs: Sequence[str] | None) -> Networks:
    """The --allow values as networks; a bad one is a clear error naming it."""
    try:
        return tuple(ipaddress.ip_network(c, strict=False) for c in (cidrs or DEFAULT_ALLOWED))
    except ValueError as error:
        raise ValueError(f"--allow takes networks like 10.0.0.0/8 or 192.0.2.7: {error}") from None


def is_allowed(host: str, networks: Networks) -> bool:
    try:
        address = ipaddress.ip_address(host.split("%")[0])
    except ValueError:
        return False
    return any(address in network for network in networks)


def listeners(args: argparse.Namespace, switchboard, allowed: Networks) -> list:
    return [listener for module in LINE_MODULES
            for listener in importlib.import_module(module).listeners(args, switchboard, allowed)]


def wanted(args: argparse.Namespace) -> bool:
    """Whether any phone line was asked for (then the bot must be loaded)."""
    return any(importlib.import_module(module).wanted(args) for module in LINE_MODULES)
