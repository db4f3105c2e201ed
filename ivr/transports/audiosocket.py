"""(being written) A phone line for `ivr serve`; see ivr/lines.py for what it offers."""
from __future__ import annotations


def add_arguments(group) -> None:
    """Add this line's flag to `ivr serve`."""


def wanted(args) -> bool:
    return False


def listeners(args, switchboard, allowed) -> list:
    return []
