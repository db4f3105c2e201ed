"""The calls as a CSV for spreadsheets: one row per call, the columns a supervisor sorts and filters by.

Spreadsheet-safe: a text cell that a spreadsheet would read as a formula (starting with = + - @, or a tab or
carriage return that some strip before looking) gets a leading apostrophe, so it shows as the text it is. Free
text reaches these cells (a task or escalation reason a dialog developer named, an agent's or worker's name) and
whatever one writes today, a file opened by a supervisor must never run it: every cell, defence in depth.
The rows come from the call records, already masked as they were stored (no PIN, card numbers masked); the
caller's number and account are left out, since a spreadsheet travels further than the records do.
"""
from __future__ import annotations

import csv
from datetime import datetime, timezone
from typing import Any, Dict, Iterable, List, Optional, TextIO

from ivr.reports.resolution import REPEAT_WINDOW_DAYS, resolutions
from ivr.reports.satisfaction import csat_score

COLUMNS = ("call_id", "channel", "started_utc", "seconds", "outcome", "task", "escalation_reason", "queue_outcome",
           "agent", "disposition", "worker", "junk", "csat_score", "resolved", "repeat_of")
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def write_calls_csv(out: TextIO, calls: List[Dict[str, Any]], entries: Iterable[Dict[str, Any]],
                    window_days: float = REPEAT_WINDOW_DAYS, earlier_calls: Iterable[Dict[str, Any]] = ()) -> int:
    """Write the header and one row per call in `calls` to `out`; returns the number of calls written.
    `entries`: queue rows (ivr.reports.history.queue_row) for the agent and their wrap-up."""
    entries = list(entries)
    by_id = {entry["id"]: entry for entry in entries}
    verdicts = resolutions([*earlier_calls, *calls], entries, window_days)
    writer = csv.writer(out, lineterminator="\r\n")  # RFC 4180, as spreadsheets expect
    writer.writerow(COLUMNS)
    for call in calls:
        writer.writerow([safe_cell(value) for value in _row(call, by_id.get(call.get("queue_entry")),
                                                             verdicts[call["call_id"]])])
    return len(calls)


def safe_cell(value: Any) -> Any:
    """A cell a spreadsheet shows as written: text that would start a formula is quoted with an apostrophe."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (int, float)):
        return value
    text = str(value)
    return "'" + text if text.startswith(_FORMULA_STARTS) else text


def _row(call: Dict[str, Any], entry: Optional[Dict[str, Any]], verdict: Dict[str, Any]) -> List[Any]:
    started = datetime.fromisoformat(call["started_at"]).astimezone(timezone.utc)
    return [call["call_id"], call.get("channel"), started.strftime("%Y-%m-%d %H:%M:%S"), call["seconds"],
            call["outcome"], call.get("task"), (call.get("escalation") or {}).get("reason"), call.get("queue_outcome"),
            (entry or {}).get("agent"), (entry or {}).get("disposition"), call.get("worker"), call.get("junk"),
            csat_score(call), verdict["resolved"], verdict["repeat_of"]]
