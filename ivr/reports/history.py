"""The history a report reads: stored call records and queue entries, as plain rows for ivr.reports.kpis."""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Dict, List, Optional, Tuple

from ivr.queue.model import QueueEntry


def history(settings, since: Optional[datetime] = None) -> Tuple[List[Dict[str, Any]], List[Dict[str, Any]]]:
    """(calls, queue entries) started or enqueued at or after `since` (everything when None), oldest first."""
    from ivr.queue import open_queue
    from ivr.records import open_records

    with open_records(settings) as records:
        calls = records.calls(since)
    with open_queue(settings) as queue:
        entries = queue.entries(since)
    return calls, [queue_row(entry) for entry in entries]


def earlier_calls(settings, since: Optional[datetime], days: float) -> List[Dict[str, Any]]:
    """Calls from the `days` before `since` (none when the report covers everything): a call in the period may
    repeat one of them, which first-call resolution counts."""
    from ivr.records import open_records

    if since is None:
        return []
    with open_records(settings) as records:
        return [call for call in records.calls(since - timedelta(days=days))
                if datetime.fromisoformat(call["started_at"]) < since]


def queue_row(entry: QueueEntry) -> Dict[str, Any]:
    return {"id": entry.id, "state": entry.state, "reason": entry.escalation.reason,
            "enqueued_at": _iso(entry.enqueued_at), "taken_at": _iso(entry.taken_at),
            "ended_at": _iso(entry.ended_at), "callback_number": entry.callback_number,
            "disposition": entry.disposition, "agent": entry.agent}


def _iso(moment: Optional[datetime]) -> Optional[str]:
    return moment.isoformat() if moment else None
