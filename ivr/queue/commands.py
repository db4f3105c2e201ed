"""The `ivr` commands of this area (registered by ivr/cli.py)."""
from __future__ import annotations


def register(commands, bench_commands) -> None:
    """Add this area's subcommands; each sets run=function(args, settings) -> exit status."""
