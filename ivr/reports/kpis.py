"""Call-centre KPIs from plain rows: call records (as `ivr calls show --json` prints them) and queue entries.

Pure computation, no database and no drawing. Each figure is defined in GLOSSARY (shown with the report).
First-call resolution lives in ivr.reports.resolution, CSAT and junk calls in ivr.reports.satisfaction; their
functions are importable from here too (first_call_resolution, resolutions, csat, junk_calls).
"""
from __future__ import annotations

from collections import Counter
from datetime import datetime
from statistics import mean
from typing import Any, Dict, Iterable, List, Optional

from ivr.call_result import OUTCOMES
from ivr.reports.resolution import REPEAT_WINDOW_DAYS, first_call_resolution, resolutions
from ivr.reports.satisfaction import csat, junk_calls

SERVICE_LEVEL_SECONDS = 20.0
NO_MATCH_INTENTS = ("nlu_fallback", "out_of_scope")
TOP_PROMPTS = 10
WAIT_BOUNDS = (10, 20, 30, 60, 120, None)  # seconds: answered within 10 s, within 20 s, ..., longer
ANSWERED = ("taken", "wrapped_up")
TASK_NAMES = {"bill_pay": "bill payment", "balance": "balance enquiry", "address_change": "address change"}
GLOSSARY = {
    "containment": "Calls the bot finished without handing the caller to an agent (every outcome but escalated), "
                   "out of all calls.",
    "task completion": "Tasks finished in the bot (a payment posted, a balance read out, an address saved) out of "
                       "the tasks callers started. A task the caller cancelled, left for another task, or left by "
                       "hanging up or asking for a person counts as not completed.",
    "self-served": "A call in which a task was completed and no agent was needed, however the caller then left "
                   "(goodbye or hanging up).",
    "abandoned in the bot": "Calls where the caller hung up on the bot before any task was done and without being "
                            "handed to an agent, out of all calls.",
    "abandoned in the queue": "Callers waiting on the line for an agent who hung up before one took them, out of "
                              "the callers who waited on the line (callbacks are not counted).",
    "ended": "Calls where the caller said goodbye before any task was done.",
    "bot handle time": "The caller's time with the bot, from answer to hang-up or to being put through to an "
                       "agent; time with an agent is not counted (a caller back with the bot after the agent's "
                       "call, for the survey, adds only that time).",
    "agent handle time": "From an agent taking the caller to their wrap-up.",
    "speed of answer": "From joining the queue to being taken by an agent, over callers waiting on the line.",
    "service level": "The share of callers waiting on the line that an agent took within the service-level time.",
    "no-input / no-match": "At a question: the caller said nothing / what they said was not understood (a "
                           "fallback intent, or nothing heard).",
    "first-call resolution": "Calls that settled the caller's need at once, out of those the bot kept or an agent "
                             "wrapped up that had a task. The bot's: it completed the task; an agent's: wrapped up "
                             "as resolved (follow-up, transferred and the rest are not). Either way the same "
                             "caller (number, or account named) did not call again about the same task within "
                             "the repeat window of the call's start; a call that did is a repeat call.",
    "CSAT": "The caller's answer (1 to 5) to the survey after the call: the average of the answers, and the "
            "response rate (answers out of surveys asked). About the bot: surveys after self-service; about agents: "
            "surveys after an agent's call (asked when the agent hung up first), also per agent.",
    "junk calls": "Dead air (no voice at all on the line after the reprompts) and prank calls (chatter with no "
                  "request), ended by the bot without an agent.",
    "agent minutes spared": "Junk calls times the period's agent handle time: each would have reached an agent "
                            "before junk calls were told apart.",
}


def kpis(calls: List[Dict[str, Any]], entries: List[Dict[str, Any]],
         prompt_names: Optional[Dict[str, str]] = None, repeat_window_days: float = REPEAT_WINDOW_DAYS,
         earlier_calls: Iterable[Dict[str, Any]] = ()) -> Dict[str, Any]:
    """Every figure of the report. `calls`: call-record dicts; `entries`: dicts with id, state, reason,
    enqueued_at, taken_at, ended_at (ISO 8601 or None), callback_number and disposition; `prompt_names`: what a
    supervisor calls each prompt ("card on file?" for utter_ask_use_card_on_file); `earlier_calls`: calls from
    just before the period that its calls may repeat (first-call resolution)."""
    queue = _queue_figures(entries)
    return {**_call_figures(calls), **queue, "prompts": no_input_no_match(calls, names=prompt_names or {}),
            "first_call_resolution": first_call_resolution(calls, entries, repeat_window_days, earlier_calls),
            "csat": csat(calls, TASK_NAMES), "junk_calls": junk_calls(calls, queue["agent_handle_time_s"]),
            "glossary": GLOSSARY}


def live_figures(calls: List[Dict[str, Any]], entries: List[Dict[str, Any]]) -> Dict[str, Any]:
    """The figures a wallboard shows, computed as kpis() computes them, from calls that carry only their outcome,
    task, junk and csat (ivr.records.store.CallRecords.outcomes: no turns), and the queue `entries`."""
    queue = _queue_figures(entries)
    return {**queue, "calls": len(calls), "containment_rate": _share(_contained(calls), len(calls)),
            "csat": csat(calls, TASK_NAMES), "junk_calls": junk_calls(calls, queue["agent_handle_time_s"])}


__all__ = ["GLOSSARY", "REPEAT_WINDOW_DAYS", "csat", "first_call_resolution", "junk_calls", "kpis", "live_figures",
           "no_input_no_match", "prompt_name", "resolutions", "tasks_of"]


def tasks_of(call: Dict[str, Any]) -> List[Dict[str, Any]]:
    """The tasks a call started, each completed or not (records from before tasks were kept: the call's task)."""
    if call.get("tasks"):
        return call["tasks"]
    return [{"task": call["task"], "completed": call["outcome"] == "self_served"}] if call["task"] else []


def _call_figures(calls: List[Dict[str, Any]]) -> Dict[str, Any]:
    outcomes = Counter(call["outcome"] for call in calls)
    contained = _contained(calls)
    tasks: Dict[str, Dict[str, Any]] = {}
    for call in calls:
        for started in tasks_of(call):
            task = tasks.setdefault(started["task"], {"name": TASK_NAMES.get(started["task"], started["task"]),
                                                      "attempted": 0, "completed": 0})
            task["attempted"] += 1
            task["completed"] += bool(started["completed"])
    for task in tasks.values():
        task["completion_rate"] = task["completed"] / task["attempted"]
    reasons = Counter((call["escalation"] or {}).get("reason") or "unknown"
                      for call in calls if call["outcome"] == "escalated")
    return {
        "calls": len(calls),
        "outcomes": {outcome: outcomes[outcome] for outcome in OUTCOMES},
        "contained": contained,
        "containment_rate": _share(contained, len(calls)),
        "abandoned_in_bot": outcomes["abandoned"],
        "abandoned_in_bot_rate": _share(outcomes["abandoned"], len(calls)),
        "task_completion_rate": _share(sum(t["completed"] for t in tasks.values()),
                                       sum(t["attempted"] for t in tasks.values())),
        "tasks": dict(sorted(tasks.items())),
        "escalations_by_reason": dict(sorted(reasons.items(), key=lambda item: (-item[1], item[0]))),
        "bot_handle_time_s": _mean(call["seconds"] for call in calls),
        "calls_per_day": _per_day(calls),
    }


def _contained(calls: List[Dict[str, Any]]) -> int:
    """Calls the bot finished without handing the caller to an agent."""
    return sum(call["outcome"] != "escalated" for call in calls)


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


def no_input_no_match(calls: Iterable[Dict[str, Any]], top: int = TOP_PROMPTS,
                      names: Optional[Dict[str, str]] = None) -> List[Dict[str, Any]]:
    """The prompts callers most often failed to answer: no_input and no_match counts out of the turns there."""
    seen: Dict[str, Dict[str, Any]] = {}
    for call in calls:
        for turn in call["turns"]:
            name = (names or {}).get(turn["prompt"]) or prompt_name(turn["prompt"])
            prompt = seen.setdefault(turn["prompt"], {"prompt": turn["prompt"], "name": name, "no_input": 0,
                                                      "no_match": 0, "turns": 0})
            prompt["turns"] += 1
            failure = _failure(turn)
            if failure:
                prompt[failure] += 1
    failing = [dict(p, failure_rate=(p["no_input"] + p["no_match"]) / p["turns"])
               for p in seen.values() if p["no_input"] + p["no_match"]]
    failing.sort(key=lambda p: (-(p["no_input"] + p["no_match"]), p["prompt"]))
    return failing[:top]


def prompt_name(prompt: str) -> str:
    """A prompt's name as a person says it, when the dialog files give none: utter_ask_zip_code -> "zip code"."""
    if not prompt:
        return "(unnamed)"
    words = prompt.removeprefix("utter_").removeprefix("ask_").removeprefix("hold_")
    rephrased = words.endswith("_rephrase")
    words = words.removesuffix("_rephrase").replace("_", " ")
    return f"{words} (asked again)" if rephrased else words


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
