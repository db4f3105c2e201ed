"""The `ivr` commands of the tooling (registered by ivr/cli.py): `ivr simulate` and `ivr bench
latency|accuracy|calls|cluster`. Each module is imported only when its command runs: a benchmark's
libraries (jiwer, matplotlib, aiohttp's client) stay out of every other command's start-up."""
from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path
from typing import Optional

from ivr.config import Settings, add_engine_flags


def register(commands, bench_commands) -> None:
    """Add this area's subcommands; each sets run=function(args, settings) -> exit status."""
    simulate = commands.add_parser("simulate", help="run scenario files (or folders of them) through the real "
                                                    "pipeline; the demo accounts are reset before each")
    add_engine_flags(simulate)
    simulate.add_argument("paths", nargs="+", type=Path, metavar="PATH")
    simulate.add_argument("--json", action="store_true")
    simulate.set_defaults(run=_simulate)

    latency = bench_commands.add_parser("latency", help="per-turn latency over the scenario set")
    add_engine_flags(latency)
    latency.add_argument("paths", nargs="*", type=Path, default=None, metavar="PATH")
    latency.add_argument("--json", action="store_true")
    _add_calibration_flag(latency)
    latency.set_defaults(run=_bench_latency)

    accuracy = bench_commands.add_parser("accuracy", help="audio -> words, intents and slot values, in three line conditions")
    add_engine_flags(accuracy)
    accuracy.add_argument("--data", type=Path, default=None, help="labelled utterances (default tests/data/accuracy.yml)")
    accuracy.add_argument("--json", action="store_true")
    accuracy.add_argument("--plot", type=Path, metavar="PNG", help="write the intent confusion plot here")
    accuracy.add_argument("--limit", type=int, help="only the first N utterances")
    _add_calibration_flag(accuracy)
    accuracy.set_defaults(run=_bench_accuracy)

    calls = bench_commands.add_parser(
        "calls", help="many callers at once over WebSocket media streams: latency, audio underruns, CPU per call")
    calls.add_argument("--max", type=_at_least_one, default=16, metavar="N",
                       help="the most callers at once; the ramp doubles 1, 2, 4, ... up to N (default 16)")
    calls.add_argument("paths", nargs="*", type=Path, default=None, metavar="PATH",
                       help="scenario files or folders (default tests/scenarios: the short ones, without hold or barge-in)")
    calls.add_argument("--json", action="store_true")
    _add_calibration_flag(calls)
    calls.set_defaults(run=_bench_calls)

    cluster = bench_commands.add_parser(
        "cluster", help="SIPp callers through Kamailio into `ivr cluster` workers: the ramp, then one worker killed")
    cluster.add_argument("--workers", type=_at_least_one, default=2, metavar="N", help="workers in the cluster (default 2)")
    cluster.add_argument("--max", type=_at_least_one, default=16, metavar="N",
                         help="the most calls at once; the ramp doubles 1, 2, 4, ... up to N (default 16)")
    cluster.add_argument("--rate", type=_calls_per_second, default=4.0, metavar="CALLS",
                         help="new calls a second within each step (default 4)")
    cluster.add_argument("--json", action="store_true")
    _add_calibration_flag(cluster)
    cluster.set_defaults(run=_bench_cluster)


def _simulate(args, settings: Settings) -> int:
    from ivr.tools.simulate import find_scenarios, load_scenario

    for path in find_scenarios(args.paths):  # every file is checked before models load
        load_scenario(path)
    report = asyncio.run(_simulate_on_a_bot(settings, args.paths))
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        for scenario in report["scenarios"]:
            print(f"{'PASS' if scenario['passed'] else 'FAIL'}  {scenario['name']}  ({scenario['outcome']})")
            for failure in scenario["failures"]:
                print(f"      {failure}")
        print(f"{report['passed']} passed, {report['failed']} failed")
    return 1 if report["failed"] else 0


async def _simulate_on_a_bot(settings: Settings, paths: list[Path]) -> dict:
    from ivr.bot import Bot
    from ivr.tools.simulate import run_scenarios

    bot = await Bot.load(settings)
    try:
        return await run_scenarios(bot, paths, settings)
    finally:
        await bot.close()


def _scenarios(args, settings: Settings) -> list[Path]:
    return args.paths or [settings.dialogs_dir.parent / "tests" / "scenarios"]


def _bench_latency(args, settings: Settings) -> int:
    from ivr.tools.bench import latency

    return latency(settings, _scenarios(args, settings), args.json, _calibrate(args))


def _bench_accuracy(args, settings: Settings) -> int:
    from ivr.tools.accuracy import accuracy

    data = args.data or settings.dialogs_dir.parent / "tests" / "data" / "accuracy.yml"
    return accuracy(settings, data, args.json, args.plot, args.limit, _calibrate(args))


def _bench_calls(args, settings: Settings) -> int:
    from ivr.tools.bench_calls import bench_calls

    return bench_calls(settings, _scenarios(args, settings), args.max, args.json, _calibrate(args))


def _bench_cluster(args, settings: Settings) -> int:
    from ivr.tools.bench_cluster import bench_cluster

    return bench_cluster(settings, args.workers, args.max, args.json, _calibrate(args), args.rate)


def _add_calibration_flag(bench) -> None:
    bench.add_argument("--no-calibration", action="store_true",
                       help="skip the machine calibration (Whisper tiny.en on a fixed clip, a few seconds) "
                            "that is printed first and divides the figures; for quick runs")


def _calibrate(args) -> Optional[dict]:
    """Before the benchmark loads anything, so the calibration has the cores to itself."""
    from ivr.tools.calibration import first

    return first(not args.no_calibration, args.json)


def _at_least_one(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: give a whole number of callers, 1 or more")
    return int(text)


def _calls_per_second(text: str) -> float:
    try:
        rate = float(text)
    except ValueError:
        rate = 0.0
    if not 0 < rate <= 100:
        raise argparse.ArgumentTypeError(f"{text!r}: give calls a second, more than 0 and at most 100")
    return rate
