"""Customer satisfaction (the one-question survey) and junk calls, from call-record rows.

A record's `csat` is {"asked": bool, "score": 1-5 or None, "by": "keypad" | "voice" | None}, or None when the
survey was not asked; asked after an agent's call (the agent hung up first, the caller came back to the bot), it
also names the "agent"; its `junk` is "dead_air", "prank" or None. Plain functions, no database.
"""
from __future__ import annotations

from statistics import fmean
from typing import Any, Dict, Iterable, List, Optional

JUNK_KINDS = ("dead_air", "prank")


def csat_score(call: Dict[str, Any]) -> Optional[int]:
    """The caller's answer to the survey (1-5), or None when not asked or not answered."""
    survey = call.get("csat") or {}
    return survey.get("score") if survey.get("asked") else None


def csat(calls: Iterable[Dict[str, Any]], task_names: Optional[Dict[str, str]] = None) -> Dict[str, Any]:
    """Average score, answers out of surveys asked (the response rate), by task and by whom the question was
    about: an agent (asked after the agent's call, the record names them) or else the bot, and each agent by name."""
    asked = [call for call in calls if (call.get("csat") or {}).get("asked")]
    by_task: Dict[str, List[Dict[str, Any]]] = {}
    by_agent: Dict[str, List[Dict[str, Any]]] = {}
    for call in asked:
        by_task.setdefault(call.get("task") or "none", []).append(call)
        if call["csat"].get("agent"):
            by_agent.setdefault(call["csat"]["agent"], []).append(call)
    return {
        **_survey(asked),
        # what the question was about: a survey asked of a caller before they asked for a person rates the bot
        "bot": _survey([call for call in asked if not call["csat"].get("agent")]),
        "agents": _survey([call for call in asked if call["csat"].get("agent")]),
        "by_task": {task: {"name": (task_names or {}).get(task, task), **_survey(of_task)}
                    for task, of_task in sorted(by_task.items())},
        "by_agent": {agent: _survey(of_agent) for agent, of_agent in sorted(by_agent.items())},
    }


def junk_calls(calls: Iterable[Dict[str, Any]], agent_handle_time_s: Optional[float]) -> Dict[str, Any]:
    """Dead-air and prank calls, and the agent minutes they did not take: each would have reached an agent
    before junk calls were told apart (dead air after the reprompts, a prank after its no-matches), for as
    long as the period's average agent handle time. None when no agent wrapped anyone up in the period."""
    counts = {kind: 0 for kind in JUNK_KINDS}
    for call in calls:
        if call.get("junk") in counts:
            counts[call["junk"]] += 1
    total = sum(counts.values())
    spared = total * agent_handle_time_s / 60 if agent_handle_time_s is not None else None
    return {**counts, "calls": total, "agent_minutes_spared": spared}


def _survey(asked: List[Dict[str, Any]]) -> Dict[str, Any]:
    scores = [csat_score(call) for call in asked]
    answered = [score for score in scores if score is not None]
    return {"average": fmean(answered) if answered else None, "asked": len(asked), "answered": len(answered),
            "response_rate": len(answered) / len(asked) if asked else None}
