"""What an agent sees, as plain values: queue rows, the screen-pop, agent counts. No I/O, no HTML.

The page, its live feed and the JSON views all show the same rows, built here from the store's dataclasses.
"""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Iterable, Optional

from ivr.queue import routing
from ivr.queue.handoff import REASONS, TASKS, upset_warning
from ivr.queue.model import AGENT_STATES, CALLBACK, Agent, QueueEntry

PRIORITY_NAMES = {routing.NORMAL: "normal", routing.HIGH: "high", routing.URGENT: "urgent"}
STATE_NAMES = {"available": "Available", "busy": "Busy", "wrap_up": "Wrap-up", "offline": "Offline"}


def now() -> datetime:
    return datetime.now(timezone.utc)


def seconds_between(start: Optional[datetime], end: datetime) -> float:
    if start is None:
        return 0.0
    if start.tzinfo is None:  # SQLite hands back naive times; the store keeps UTC
        start = start.replace(tzinfo=timezone.utc)
    return max(0.0, (end - start).total_seconds())


def duration(seconds: float) -> str:
    """42 s, 3 min 05 s, 1 h 02 min: how long, as an agent reads it at a glance."""
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


def reason_text(reason: str) -> str:
    return REASONS.get(reason, reason.replace("_", " "))


def frustration_text(score: float, care: routing.CareRules) -> str:
    if care.upset(score):
        return "upset"
    return "impatient" if score >= 0.3 else "calm"


def queue_rows(entries: Iterable[QueueEntry], at: datetime, agent_skills: Iterable[str] = (),
               care: Optional[routing.CareRules] = None, agents: Iterable[Agent] = ()) -> list[dict]:
    """One row per routable caller, in the order they will be served. An upset caller still kept for a
    de-escalation agent (`care`, with `agents` on duty) needs that skill too, for now."""
    have, staff = set(agent_skills), [(agent.state, agent.skills) for agent in agents]
    return [_row(place, entry, at, have, care, staff) for place, entry in enumerate(entries, start=1)]


def _row(place: int, entry: QueueEntry, at: datetime, have: set, care: Optional[routing.CareRules] = None,
         staff: Iterable[tuple[str, Iterable[str]]] = ()) -> dict:
    escalation = entry.escalation
    waited = seconds_between(entry.enqueued_at, at)
    rules = care or routing.CareRules()
    kept = bool(care and care.kept_for_care(escalation.frustration, waited, routing.care_on_duty(entry.skills, staff)))
    needs = [*entry.skills, routing.DEESCALATION] if kept else list(entry.skills)
    return {
        "id": entry.id,
        "place": place,
        "state": entry.state,
        "callback": entry.state == CALLBACK,
        "callback_number": entry.callback_number,
        "line_dropped": entry.lost_at is not None,  # their call was gone while on hold: owed a callback
        "waited_s": round(waited, 1),
        "waited": duration(waited),
        "reason": escalation.reason,
        "reason_text": reason_text(escalation.reason),
        "priority": entry.priority,
        "priority_name": PRIORITY_NAMES.get(entry.priority, str(entry.priority)),
        "summary": escalation.summary,
        "frustration": round(escalation.frustration, 2),
        "frustration_percent": round(escalation.frustration * 100),
        "frustration_text": frustration_text(escalation.frustration, rules),
        "upset_at": rules.upset_at,  # where the meter turns red: the dialog's frustration threshold
        "skills": needs,
        "missing_skills": [skill for skill in needs if skill not in have],
        "kept_for_care": kept,
    }


def screen_pop(entry: QueueEntry, at: datetime, care: routing.CareRules) -> dict:
    """Everything about the caller an agent holds, so they never ask again; an upset caller's warning line first.
    Blocking the first time (the warning's sentiment lexicon loads): call it off the event loop."""
    escalation = entry.escalation
    waited = seconds_between(entry.enqueued_at, entry.taken_at or at)
    return {
        "warning": upset_warning(escalation, care.upset_at),
        **_row(0, entry, at, set(entry.skills), care),
        "waited_s": round(waited, 1),
        "waited": duration(waited),
        "task": escalation.task,
        "task_text": TASKS.get(escalation.task or "", escalation.task),
        "slots": dict(escalation.slots),
        "account": escalation.account,
        "authenticated": escalation.authenticated,
        "caller_number": escalation.caller_number,
        "language": escalation.language,
        "channel": escalation.channel,
        "call_id": escalation.call_id,
        "transcript": [{"speaker": line.speaker, "text": line.text} for line in escalation.transcript],
        "agent": entry.agent,
        "line": line_text(entry),
    }


def line_text(entry: QueueEntry) -> str:
    """Where the caller is, for the agent who took them."""
    if entry.connected_at:
        return "Connected to your phone"
    if entry.callback_number:
        return "Left the line: call them back"
    if entry.escalation.channel == "sip":
        return "Ringing your phone…"
    return "On hold: the bot is telling them you are taking the call"


def agent_counts(agents: Iterable[Agent]) -> dict[str, int]:
    counts = {state: 0 for state in AGENT_STATES}
    for agent in agents:
        counts[agent.state] = counts.get(agent.state, 0) + 1
    return counts


def agent_view(agent: Agent) -> dict:
    return {"name": agent.name, "state": agent.state, "state_name": STATE_NAMES.get(agent.state, agent.state),
            "skills": list(agent.skills), "sip_address": agent.sip_address, "role": agent.role,
            "supervisor": agent.supervisor}


def queue_summary(rows: list[dict], counts: dict[str, int]) -> str:
    waiting = sum(not row["callback"] for row in rows)
    callbacks = len(rows) - waiting
    agents = ", ".join(f"{count} {STATE_NAMES.get(state, state).lower()}" for state, count in counts.items() if count)
    return f"{waiting} waiting, {callbacks} to call back · agents: {agents or 'none'}"
