"""The `ivr` commands of this area (registered by ivr/cli.py): `ivr calls …` and `ivr report`."""
from __future__ import annotations

import json
import os
import sys
from datetime import datetime, timezone
from functools import wraps
from pathlib import Path
from typing import Any, Dict, Optional

from ivr.errors import UserError

_SINCE_HELP = "only calls from this date or time on: YYYY-MM-DD or YYYY-MM-DDTHH:MM, UTC unless an offset is given"


def register(commands, bench_commands) -> None:
    """Add this area's subcommands; each sets run=function(args, settings) -> exit status."""
    calls = commands.add_parser("calls", help="stored call records (every call, on any channel)")
    actions = calls.add_subparsers(dest="calls_command", required=True, metavar="ACTION")
    last = actions.add_parser("last", help="the most recent call, turn by turn")
    last.add_argument("--json", action="store_true", help="the record as one JSON object")
    last.set_defaults(run=_last)
    show = actions.add_parser("show", help="one call, turn by turn")
    show.add_argument("call_id", metavar="ID")
    show.add_argument("--json", action="store_true", help="the record as one JSON object")
    show.set_defaults(run=_show)
    listing = actions.add_parser("list", help="one line per call, oldest first")
    listing.add_argument("--since", metavar="DATE", help=_SINCE_HELP)
    listing.add_argument("--json", action="store_true", help="the records as one JSON list")
    listing.set_defaults(run=_list)
    export = actions.add_parser("export", help="the calls as a CSV file for spreadsheets, one row per call")
    export.add_argument("--csv", required=True, metavar="FILE", help="where to write it (- for standard output)")
    export.add_argument("--since", metavar="DATE", help=_SINCE_HELP)
    _add_repeat_window(export)
    export.set_defaults(run=_export)

    report = commands.add_parser("report", help="call-centre KPIs from the call records and the queue history, "
                                                "as an HTML page with plots (or --json)")
    report.add_argument("--since", metavar="DATE", help=_SINCE_HELP)
    report.add_argument("--out", type=Path, metavar="HTML", help="where to write the page (default report.html; "
                                                                 "with --json, only when given)")
    report.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    _add_repeat_window(report)
    report.set_defaults(run=_report)


def _add_repeat_window(command) -> None:
    command.add_argument("--repeat-window-days", metavar="DAYS",
                         help="a caller who calls again about the same task within this many days leaves their "
                              "earlier call unresolved (else IVR_REPEAT_WINDOW_DAYS, else 7)")


def _repeat_window(args) -> float:
    from ivr.reports.resolution import repeat_window_days
    return repeat_window_days(args.repeat_window_days or os.environ.get("IVR_REPEAT_WINDOW_DAYS"))


def parse_since(text: Optional[str]) -> Optional[datetime]:
    """--since as a timezone-aware time: a date is its midnight; no offset means UTC."""
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text.strip()[:-1] + "+00:00" if text.strip().endswith("Z") else text.strip())
    except ValueError:
        raise UserError(f"--since {text!r} is not a date: use YYYY-MM-DD or YYYY-MM-DDTHH:MM (UTC)") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _records_errors_are_the_users(run):
    """Records trouble (database down, unknown call) is one line for the person at the command line."""
    @wraps(run)
    def guarded(args, settings) -> int:
        from ivr.records import RecordsError
        try:
            return run(args, settings)
        except RecordsError as error:
            raise UserError(" ".join(str(error).split())) from None  # psycopg2 explains over several lines
    return guarded


# --- ivr calls ----------------------------------------------------------------------------------------------

@_records_errors_are_the_users
def _last(args, settings) -> int:
    from ivr.records import open_records
    with open_records(settings) as records:
        record = records.last()
    if record is None:
        print("ivr calls last: no calls recorded yet", file=sys.stderr)
        return 1
    _print_record(record, args.json)
    return 0


@_records_errors_are_the_users
def _show(args, settings) -> int:
    from ivr.records import open_records
    with open_records(settings) as records:
        record = records.get(args.call_id)
    _print_record(record, args.json)
    return 0


@_records_errors_are_the_users
def _list(args, settings) -> int:
    from ivr.records import open_records
    since = parse_since(args.since)
    with open_records(settings) as records:
        found = records.calls(since)
    if args.json:
        print(json.dumps(found, indent=2))
        return 0
    if not found:
        print(_no_calls(since), file=sys.stderr)
        return 0
    for record in found:
        reason = (record["escalation"] or {}).get("reason") or ""
        print(f"{_clock(record['started_at'])}  {record['call_id']:<12}  {record['channel'] or '-':<11}  "
              f"{record['outcome']:<11}  {record['task'] or '-':<14}  {reason or '-':<16}  {record['seconds']:7.1f} s"
              + (f"  {record['worker']}" if record.get("worker") else ""))
    return 0


def _print_record(record: Dict[str, Any], as_json: bool) -> None:
    if as_json:
        print(json.dumps(record, indent=2))
        return
    escalation = record["escalation"]
    print(f"call {record['call_id']}  {record['channel'] or 'unknown channel'}"
          + (f"  from {record['caller_number']}" if record["caller_number"] else "")
          + (f"  answered by worker {record['worker']}" if record.get("worker") else ""))  # older records: none
    print(f"  {_clock(record['started_at'])} to {_clock(record['ended_at'])} UTC ({record['seconds']:.1f} s)")
    outcome = record["outcome"] + (f" ({escalation['reason']})" if escalation else "")
    print(f"  outcome: {outcome}" + (f", task {record['task']}" if record["task"] else ""))
    if record["queue_entry"] is not None:
        print(f"  queue entry {record['queue_entry']}: {record['queue_outcome'] or 'unknown'}")
    for text in record["greeting"]:
        print(f"  bot:    {text}")
    for turn in record["turns"]:
        how = turn["kind"] + (f", {turn['intent']}" if turn["intent"] else "") + \
            (f" {turn['confidence']:.2f}" if turn["confidence"] is not None else "") + \
            (f", at {turn['prompt']}" if turn["prompt"] else "")
        print(f"  caller: {turn['heard'] or '(nothing)'}   [{how}]")
        for text in turn["bot"]:
            print(f"  bot:    {text}")
    if escalation:
        print(f"  handed over: {escalation['summary'] or escalation['reason']}"
              f" (frustration {escalation['frustration']:.2f})")


def _clock(iso: str) -> str:
    return datetime.fromisoformat(iso).astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


# --- ivr report ---------------------------------------------------------------------------------------------

@_records_errors_are_the_users
def _report(args, settings) -> int:
    from ivr.reports.history import earlier_calls, history
    from ivr.dialog.settings import load_voice_settings
    from ivr.reports.kpis import kpis

    since, window = parse_since(args.since), _repeat_window(args)
    calls, entries = history(settings, since)
    names = load_voice_settings(settings.dialogs_dir).report_names()
    figures = {"since": since.isoformat() if since else None,
               **kpis(calls, entries, names, window, earlier_calls(settings, since, window))}
    period = f"since {since.isoformat()}" if since else "all recorded calls"
    if not calls and not entries:
        print(f"ivr report: {_no_calls(since)}: nothing to report", file=sys.stderr)
        if args.json:
            print(json.dumps(figures, indent=2))
        return 0 if args.json else 1
    if args.json:
        print(json.dumps(figures, indent=2))
    if args.out or not args.json:
        from ivr.reports.html import render
        out = args.out or Path("report.html")
        generated = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        out.write_text(render(figures, "How well the line serves callers", f"{period}; made {generated}"),
                       encoding="utf-8")
        print(f"report: {out} ({figures['calls']} calls, {figures['queued']} queued)",
              file=sys.stderr if args.json else sys.stdout)
    return 0


@_records_errors_are_the_users
def _export(args, settings) -> int:
    from ivr.reports.export import write_calls_csv
    from ivr.reports.history import earlier_calls, history

    since, window = parse_since(args.since), _repeat_window(args)
    calls, entries = history(settings, since)
    earlier = earlier_calls(settings, since, window)
    if args.csv == "-":
        write_calls_csv(sys.stdout, calls, entries, window, earlier)
        return 0
    try:
        with open(args.csv, "w", encoding="utf-8-sig", newline="") as out:  # the mark tells Excel it is UTF-8
            written = write_calls_csv(out, calls, entries, window, earlier)
    except OSError as error:
        raise UserError(f"cannot write {args.csv}: {error.strerror}") from None
    print(f"calls: {args.csv} ({written} calls)")
    return 0


def _no_calls(since: Optional[datetime]) -> str:
    return f"no calls recorded since {since.isoformat()}" if since else "no calls recorded yet"
