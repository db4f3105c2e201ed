"""First-call resolution, computed from the call history rather than stored with each call.

Computed because it is only known later (a repeat call days afterwards, an agent's wrap-up after the call
record was saved) and so the window stays a choice of whoever reads the report, after the fact. Plain
functions over the rows `ivr calls show --json` prints and the queue rows of ivr.reports.history.
"""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Dict, Iterable, List, Optional

from ivr.errors import UserError
from ivr.phones import caller_number

REPEAT_WINDOW_DAYS = 7.0
RESOLVED = "resolved"  # the one wrap-up disposition that says the agent settled the caller's need
BOT, AGENTS = "bot", "agents"


def repeat_window_days(text: Optional[str]) -> float:
    """--repeat-window-days / IVR_REPEAT_WINDOW_DAYS as a number of days (the default when not given)."""
    if text is None or not str(text).strip():
        return REPEAT_WINDOW_DAYS
    try:
        days = float(text)
    except ValueError:
        days = -1.0
    if not 0 < days <= 366:
        raise UserError(f"the repeat-call window {text!r} is not a number of days between 0 and 366")
    return days


def callers_of(call: Dict[str, Any]) -> List[str]:
    """Who called, as the history can tell them apart: their number, and the (masked) account they named.
    Either one shared makes two calls the same caller's. Only a line number shaped like a phone number counts:
    "anonymous" or a withheld number is everyone who hid theirs, not one caller."""
    account = call.get("account") or (call.get("escalation") or {}).get("account")
    return [who for who in (f"number:{caller_number(call.get('caller_number')) or ''}", f"account:{account or ''}")
            if not who.endswith(":")]


def handled_by(call: Dict[str, Any], entries_by_id: Dict[int, Dict[str, Any]]) -> Optional[str]:
    """Who had the last word on the caller's need: the bot (it kept the call), an agent (who wrapped the caller
    up), or nobody the resolution counts (no task, a junk call, or a caller who never reached an agent)."""
    if not call.get("task") or call.get("junk"):
        return None
    if call["outcome"] != "escalated":
        return BOT
    entry = entries_by_id.get(call.get("queue_entry"))
    return AGENTS if entry and entry["state"] == "wrapped_up" else None


def resolutions(calls: Iterable[Dict[str, Any]], entries: Iterable[Dict[str, Any]],
                window_days: float = REPEAT_WINDOW_DAYS) -> Dict[str, Dict[str, Any]]:
    """Per call id: handled_by (bot | agents | None), resolved (True, False, or None when not counted) and
    repeat_of (the id of the same caller's latest earlier call about the same task within the window, or None).

    A call is resolved when the bot completed its task or the agent wrapped it up as resolved, and the same
    caller did not call again about the same task within `window_days` of it starting."""
    by_id = {entry["id"]: entry for entry in entries}
    window = timedelta(days=window_days)
    latest: Dict[tuple, Dict[str, Any]] = {}  # (caller, task) -> their latest call about it so far
    found: Dict[str, Dict[str, Any]] = {}
    for call in sorted(calls, key=lambda call: (_when(call), call["call_id"])):
        who = handled_by(call, by_id)
        found[call["call_id"]] = {"handled_by": who, "resolved": _settled(call, who, by_id), "repeat_of": None}
        if not call.get("task"):
            continue  # nothing to repeat, nothing a later call could be about
        needs = [(caller, call["task"]) for caller in callers_of(call)]
        repeated = [latest[need] for need in needs if need in latest and _when(call) - _when(latest[need]) <= window]
        for earlier in repeated:  # the caller is back: that call did not settle their need
            if found[earlier["call_id"]]["resolved"]:  # (a call not counted stays None)
                found[earlier["call_id"]]["resolved"] = False
        if repeated:
            found[call["call_id"]]["repeat_of"] = max(repeated, key=lambda e: (_when(e), e["call_id"]))["call_id"]
        latest.update((need, call) for need in needs)
    return found


def first_call_resolution(calls: List[Dict[str, Any]], entries: List[Dict[str, Any]],
                          window_days: float = REPEAT_WINDOW_DAYS,
                          earlier_calls: Iterable[Dict[str, Any]] = ()) -> Dict[str, Any]:
    """FCR for the bot and for agents, and repeat callers, over `calls`. `earlier_calls`: calls from before the
    period (within the window of its start) that a call in it may repeat; they are not counted themselves."""
    counted = {call["call_id"] for call in calls}
    found = {call_id: verdict for call_id, verdict in resolutions([*earlier_calls, *calls], entries,
                                                                  window_days).items() if call_id in counted}
    repeats = [call for call in calls if found[call["call_id"]]["repeat_of"]]

    def of(who: str) -> Dict[str, Any]:
        mine = [verdict for verdict in found.values() if verdict["handled_by"] == who]
        resolved = sum(bool(verdict["resolved"]) for verdict in mine)
        return {"calls": len(mine), "resolved": resolved, "rate": resolved / len(mine) if mine else None}

    return {"window_days": window_days, BOT: of(BOT), AGENTS: of(AGENTS), "repeat_calls": len(repeats),
            "repeat_callers": len({callers_of(call)[0] for call in repeats})}  # by number, else by account


def _settled(call: Dict[str, Any], who: Optional[str], entries_by_id: Dict[int, Dict[str, Any]]) -> Optional[bool]:
    """Whether the call itself settled the need, before any repeat call is known."""
    if who == BOT:
        return call["outcome"] == "self_served" and _task_completed(call)
    if who == AGENTS:
        return entries_by_id[call["queue_entry"]].get("disposition") == RESOLVED
    return None


def _task_completed(call: Dict[str, Any]) -> bool:
    """Whether the call's task (its last) was completed; records from before tasks were kept: self-served."""
    tasks = [task for task in call.get("tasks") or [] if task["task"] == call["task"]]
    return tasks[-1]["completed"] if tasks else call["outcome"] == "self_served"


def _when(call: Dict[str, Any]) -> datetime:
    return datetime.fromisoformat(call["started_at"])
