"""Call-centre KPIs from plain rows: call records (as `ivr calls show --json` prints them) and queue entries.

Pure computation, no database and no drawing. How each figure is measured:
- containment: calls the bot finished without handing the caller to a person (every outcome but escalated).
- completion per task: calls that self-served a task / calls that attempted it (the call's task).
- bot handle time: mean call seconds; agent handle time: mean wrapped_up - taken over wrapped-up entries.
- speed of answer, service level and abandonment are about callers waiting on the line (entries without a
  callback number): speed of answer is taken - enqueued over those an agent took; service level the share of
  them taken within SERVICE_LEVEL_SECONDS; abandonment the share that hung up while waiting.
- callbacks: queue entries that left a number to be called back on, with how long a returned one waited.
- no-input / no-match: a turn with kind no_input, or whose intent is a fallback or whose heard text is empty,
  counted against the prompt it answered.
"""
from __future__ import annotations

from collections import Counter
from datetime import datetime
from statistics import mean
from typing import Any, Dict, Iterable, List, Optional

SERVICE_LEVEL_SECONDS = 20.0
NO_MATCH_INTENTS = ("nlu_fallback", "out_of_scope")
TOP_PROMPTS = 10
WAIT_BOUNDS = (10, 20, 30, 60, 120, None)  # seconds: answered within 10 s, within 20 s, ..., longer
OUTCOMES = ("self_served", "escalated", "abandoned", "ended")
ANSWERED = ("taken", "wrapped_up")


def kpis(calls: List[Dict[str, Any]], entries: List[Dict[str, Any]]) -> Dict[str, Any]:
    """Every figure of the report. `calls`: call-record dicts; `entries`: dicts with id, state, reason,
    enqueued_at, taken_at, ended_at (ISO 8601 or None) and callback_number."""
    return {**_call_figures(calls), **_queue_figures(entries), "prompts": no_input_no_match(calls)}


def _call_figures(calls: List[Dict[str, Any]]) -> Dict[str, Any]:
    outcomes = Counter(call["outcome"] for call in calls)
    contained = len(calls) - outcomes["escalated"]
    tasks: Dict[str, Dict[str, Any]] = {}
    for call in calls:
        if call["task"]:
            task = tasks.setdefault(call["task"], {"attempted": 0, "self_served": 0})
            task["attempted"] += 1
            task["self_served"] += call["outcome"] == "self_served"
    for task in tasks.values():
        task["completion_rate"] = task["self_served"] / task["attempted"]
    reasons = Counter((call["escalation"] or {}).get("reason") or "unknown"
                      for call in calls if call["outcome"] == "escalated")
    return {
        "calls": len(calls),
        "outcomes": {outcome: outcomes[outcome] for outcome in OUTCOMES},
        "contained": contained,
        "containment_rate": _share(contained, len(calls)),
        "tasks": dict(sorted(tasks.items())),
        "escalations_by_reason": dict(sorted(reasons.items(), key=lambda item: (-item[1], item[0]))),
        "bot_handle_time_s": _mean(call["seconds"] for call in calls),
        "calls_per_day": _per_day(calls),
    }


def _queue_figures(entries: List[Dict[str, Any]]) -> Dict[str, Any]:
    on_line = [entry for entry in entries if not entry["callback_number"]]
    callbacks = [entry for entry in entries if entry["callback_number"]]
    waits = _waits(on_line)
    handled = [_seconds(entry["taken_at"], entry["ended_at"]) for entry in entries
               if entry["state"] == "wrapped_up" and entry["taken_at"] and entry["ended_at"]]
    abandoned = sum(entry["state"] == "abandoned" for entry in entries)
    return {
        "queued": len(entries),
        "answered": len(waits),
        "abandoned_in_queue": abandoned,
        "abandonment_rate": _share(abandoned, len(on_line)),
        "average_speed_of_answer_s": _mean(waits),
        "service_level": _share(sum(wait <= SERVICE_LEVEL_SECONDS for wait in waits), len(on_line)),
        "service_level_seconds": SERVICE_LEVEL_SECONDS,
        "agent_handle_time_s": _mean(handled),
        "callbacks": {"requested": len(callbacks),
                      "returned": sum(bool(entry["taken_at"]) for entry in callbacks),
                      "waiting": sum(entry["state"] == "callback" for entry in callbacks),
                      "average_wait_s": _mean(_waits(callbacks))},
        "answer_waits": _wait_buckets(waits),
    }


def _waits(entries: List[Dict[str, Any]]) -> List[float]:
    return [_seconds(entry["enqueued_at"], entry["taken_at"]) for entry in entries if entry["taken_at"]]


def no_input_no_match(calls: Iterable[Dict[str, Any]], top: int = TOP_PROMPTS) -> List[Dict[str, Any]]:
    """The prompts callers most often failed to answer: no_input and no_match counts out of the turns there."""
    seen: Dict[str, Dict[str, Any]] = {}
    for call in calls:
        for turn in call["turns"]:
            prompt = seen.setdefault(turn["prompt"], {"prompt": turn["prompt"], "no_input": 0, "no_match": 0,
                                                      "turns": 0})
            prompt["turns"] += 1
            failure = _failure(turn)
            if failure:
                prompt[failure] += 1
    failing = [dict(p, failure_rate=(p["no_input"] + p["no_match"]) / p["turns"])
               for p in seen.values() if p["no_input"] + p["no_match"]]
    failing.sort(key=lambda p: (-(p["no_input"] + p["no_match"]), p["prompt"]))
    return failing[:top]


def _failure(turn: Dict[str, Any]) -> Optional[str]:
    if turn["kind"] == "no_input":
        return "no_input"
    if turn["intent"] in NO_MATCH_INTENTS or not (turn["heard"] or "").strip():
        return "no_match"
    return None


def _per_day(calls: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    days: Dict[str, Dict[str, Any]] = {}
    for call in calls:
        day = _when(call["started_at"]).date().isoformat()
        counts = days.setdefault(day, {"day": day, "contained": 0, "escalated": 0})
        counts["escalated" if call["outcome"] == "escalated" else "contained"] += 1
    return [days[day] for day in sorted(days)]


def _wait_buckets(waits: List[float]) -> List[Dict[str, Any]]:
    """How many were answered within each band of WAIT_BOUNDS: (previous bound, bound], the last one open."""
    counts = Counter(next(i for i, bound in enumerate(WAIT_BOUNDS) if bound is None or wait <= bound)
                     for wait in waits)
    return [{"over_s": WAIT_BOUNDS[i - 1] if i else 0, "up_to_s": bound, "answered": counts[i]}
            for i, bound in enumerate(WAIT_BOUNDS)]


def _seconds(start: str, end: str) -> float:
    return (_when(end) - _when(start)).total_seconds()


def _when(moment: str) -> datetime:
    return datetime.fromisoformat(moment)


def _share(part: int, whole: int) -> Optional[float]:
    return part / whole if whole else None


def _mean(values: Iterable[float]) -> Optional[float]:
    values = list(values)
    return mean(values) if values else None
