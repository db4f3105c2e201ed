"""What a finished call leaves behind: how it ended, the tasks, the turns. The call builds it; the
call records, the simulator and the reports read it (so none of them needs the call loop)."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any, Optional

from ivr.events import Escalation, Turn

# self_served: a task was completed and no person was needed, however the caller then left (goodbye
# or hanging up); escalated: handed to the agents' queue; ended: the caller said goodbye before any
# task was done; abandoned: the caller hung up on the bot before any task was done.
OUTCOMES = ("self_served", "escalated", "abandoned", "ended")


@dataclass
class CallResult:
    call_id: str
    outcome: str  # one of OUTCOMES
    task: Optional[str]
    escalation: Optional[Escalation]
    greeting: list[str]
    turns: list[Turn]
    seconds: float  # on the call's own clock: a caller file's call lasts as long as its audio
    started_at: Optional[datetime] = None  # UTC
    ended_at: Optional[datetime] = None
    channel: str = ""  # microphone | files | files-phone | sip | websocket | audiosocket | chat
    caller_number: Optional[str] = None
    queue_entry: Optional[int] = None  # the escalation queue entry, when the caller was queued
    queue_outcome: Optional[str] = None  # taken | callback | abandoned | waiting (left unresolved) | unavailable
    tasks: list[dict[str, Any]] = field(default_factory=list)  # [{"task": "bill_pay", "completed": False}, …]
    worker: Optional[str] = None  # the `ivr serve` process that answered (`--worker`); None outside one
    # The account the caller named, masked (ivr.queue.handoff.mask_account: "48…623"): with the caller
    # number, it is how the reports know a caller who calls again (first-call resolution).
    account: Optional[str] = None
    junk: Optional[str] = None  # dead_air | prank: a call that was no caller's need, ended by the bot (outcome "ended")
    # The satisfaction survey: None when not asked, else {"asked": True, "score": 1-5 or None (skipped),
    # "by": "keypad" | "voice" | None}.
    csat: Optional[dict[str, Any]] = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "call_id": self.call_id, "channel": self.channel, "caller_number": self.caller_number,
            "started_at": self.started_at.isoformat() if self.started_at else None,
            "ended_at": self.ended_at.isoformat() if self.ended_at else None,
            "outcome": self.outcome, "task": self.task, "tasks": self.tasks,
            "escalation": asdict(self.escalation) if self.escalation else None,
            "queue_entry": self.queue_entry, "queue_outcome": self.queue_outcome,
            "account": self.account or (self.escalation.account if self.escalation else None),
            "greeting": self.greeting, "seconds": round(self.seconds, 3),
            "turns": [asdict(turn) for turn in self.turns], "worker": self.worker,
            "junk": self.junk, "csat": self.csat,
        }


def tasks_of(started: list[str], completed: list[str]) -> list[dict[str, Any]]:
    """Each task the caller began, in order, and whether it was finished (a task left for another, or
    cancelled, was not)."""
    left = list(completed)
    tasks = []
    for task in started:
        done = task in left
        if done:
            left.remove(task)
        tasks.append({"task": task, "completed": done})
    return tasks + [{"task": task, "completed": True} for task in left]


def survey_answer(before: Optional[dict[str, Any]], score: Optional[int], turn_kind: str) -> dict[str, Any]:
    """The survey as the record keeps it: asked, the score once given, and whether it was keyed or said (a
    typed caller's words count as said)."""
    if before and before.get("score") is not None:
        return before
    if score is None:
        return {"asked": True, "score": None, "by": None}
    return {"asked": True, "score": score, "by": "keypad" if turn_kind == "dtmf" else "voice"}


def outcome_of(said: Optional[str], tasks: list[dict[str, Any]]) -> str:
    """How the call ended, from what the dialog said (escalated, ended, self_served) or, when the
    caller just hung up, from whether anything was done for them."""
    done = any(task["completed"] for task in tasks)
    if said == "ended" and done:
        return "self_served"
    if said:
        return said
    return "self_served" if done else "abandoned"


@dataclass
class RecordSoFar:
    """What the call record will say, gathered as the call goes (the call keeps one and feeds it each reply)."""
    outcome: Optional[str] = None  # ended | escalated (outcome_of makes the final word)
    task: Optional[str] = None
    escalation: Optional[Escalation] = None
    turns: list[Turn] = field(default_factory=list)
    greeting: list[str] = field(default_factory=list)
    tasks_started: list[str] = field(default_factory=list)
    tasks_completed: list[str] = field(default_factory=list)
    junk: Optional[str] = None  # dead_air | prank: the dialog ended a call that was no caller's need
    csat: Optional[dict[str, Any]] = None  # the satisfaction survey, once asked (survey_answer)
    account: Optional[str] = None  # masked, once the caller proved it (PIN): how a repeat caller is known

    def heard(self, reply, turn: Turn, account: Optional[str] = None) -> None:
        """What one dialog reply (ivr.dialog.agent.DialogReply) adds to the record; `account`: the masked account
        the call has proved by now, if any."""
        self.task = reply.task or self.task
        self.tasks_started, self.tasks_completed = reply.tasks_started, reply.tasks_completed
        self.junk = reply.junk or self.junk
        if reply.survey_asked:  # keyed or said: the turn that gave the score tells
            self.csat = survey_answer(self.csat, reply.satisfaction, turn.kind)
        self.account = account or self.account

    def result(self, call_id: str, started_at: datetime, seconds: float, **line: Any) -> CallResult:
        """The finished call's record; `line`: channel, caller_number, queue_entry, queue_outcome, worker."""
        tasks = tasks_of(self.tasks_started, self.tasks_completed)
        return CallResult(call_id, outcome_of(self.outcome, tasks), self.task, self.escalation, self.greeting,
                          self.turns, seconds, started_at=started_at,
                          ended_at=started_at + timedelta(seconds=seconds), tasks=tasks, account=self.account,
                          junk=self.junk, csat=self.csat, **line)
