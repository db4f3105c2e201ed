"""The `ivr` commands of the phone lines (registered by ivr/cli.py): `ivr bench calls`."""
from __future__ import annotations

import argparse
from pathlib import Path


def register(commands, bench_commands) -> None:
    """Add this area's subcommands; each sets run=function(args, settings) -> exit status."""
    calls = bench_commands.add_parser(
        "calls", help="many callers at once over WebSocket media streams: latency, audio underruns, CPU per call")
    calls.add_argument("--max", type=_at_least_one, default=16, metavar="N",
                       help="the most callers at once; the ramp doubles 1, 2, 4, ... up to N (default 16)")
    calls.add_argument("paths", nargs="*", type=Path, default=None, metavar="PATH",
                       help="scenario files or folders (default tests/scenarios: the short ones, without hold or barge-in)")
    calls.add_argument("--json", action="store_true")
    calls.set_defaults(run=_bench_calls)


def _bench_calls(args, settings) -> int:
    from ivr.bench_calls import bench_calls

    return bench_calls(settings, args.paths or [settings.dialogs_dir.parent / "tests" / "scenarios"], args.max, args.json)


def _at_least_one(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: give a whole number of callers, 1 or more")
    return int(text)
