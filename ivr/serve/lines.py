"""The phone lines `ivr serve` answers on. Each line's module adds its own flag and listener.

A line module offers `add_arguments(parser)`, optionally `check(args)` (ValueError for a wrong value),
and `listeners(args, switchboard, allowed) -> list` of Listeners (ivr/transports/listeners.py:
`start() -> str`, `stop()`), or none when its flag is unset.
The flags every TCP listener shares (per-address cap, deadlines, the console's networks) are here
too; ivr/transports/guard.py applies them (`listen_limits` reads them back for a line).
"""
from __future__ import annotations

import argparse
import importlib

from ivr.transports import guard
from ivr.transports.listeners import Networks, allowed_networks

LINE_MODULES = ("ivr.transports.sip", "ivr.transports.media_stream", "ivr.transports.audiosocket")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    lines = parser.add_argument_group("phone lines (any of them loads the bot: Rasa, recognizer, voice)")
    lines.add_argument("--max-calls", type=int, default=16, metavar="N",
                       help="calls at once; one more is refused (SIP: 486 Busy Here). Default 16")
    lines.add_argument("--allow", action="append", metavar="CIDR",
                       help="peer networks whose calls are taken (repeatable; default 127.0.0.0/8 and ::1)")
    for module in LINE_MODULES:
        importlib.import_module(module).add_arguments(lines)
    _add_listener_arguments(parser)


def _add_listener_arguments(parser: argparse.ArgumentParser) -> None:
    doors = parser.add_argument_group("every TCP listener (console, media streams, AudioSocket), checked at accept")
    doors.add_argument("--console-allow", action="append", metavar="CIDR",
                       help="networks that may reach the console (repeatable; default: any address)")
    doors.add_argument("--max-per-address", type=_positive(int), metavar="N",
                       help=f"connections one address may hold open on one listener; more are closed at accept "
                            f"(default {guard.PER_ADDRESS}; a phone line's is at least "
                            f"--max-calls + {guard.LINE_SPARES})")
    doors.add_argument("--header-timeout", type=_positive(float), default=guard.HEADER_SECONDS, metavar="SECONDS",
                       help=f"an HTTP request whose head has not arrived by then is closed "
                            f"(default {guard.HEADER_SECONDS:g})")
    doors.add_argument("--start-timeout", type=_positive(float), default=guard.START_SECONDS, metavar="SECONDS",
                       help=f"a media stream or AudioSocket that has not started a call by then is closed "
                            f"(default {guard.START_SECONDS:g})")


def _positive(kind: type):
    def parse(text: str):
        value = kind(text)  # argparse turns a ValueError here into a usage error naming the flag
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be more than 0, not {text}")
        return value
    parse.__name__ = kind.__name__  # named in argparse's "invalid int value"
    return parse


def console_guard(args: argparse.Namespace):
    """The console's door: --console-allow (default anyone), the per-address cap, the head timeout."""
    cidrs = getattr(args, "console_allow", None)
    allowed = allowed_networks(cidrs, flag="--console-allow") if cidrs else None
    limits = guard.listen_limits(args)
    return guard.Guard("agents' console",
                       guard.Limits(allowed, limits.per_address or guard.PER_ADDRESS, limits.header_seconds))


def listeners(args: argparse.Namespace, switchboard, allowed: Networks) -> list:
    return [listener for module in LINE_MODULES
            for listener in importlib.import_module(module).listeners(args, switchboard, allowed)]


def check(args: argparse.Namespace) -> None:
    """A line's wrong flag value (ValueError, one line), said before the bot loads."""
    for module in LINE_MODULES:
        checked = getattr(importlib.import_module(module), "check", None)
        if checked:
            checked(args)


def wanted(args: argparse.Namespace) -> bool:
    """Whether any phone line was asked for (then the bot must be loaded)."""
    return any(importlib.import_module(module).wanted(args) for module in LINE_MODULES)
