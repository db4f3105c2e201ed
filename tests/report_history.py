"""A generated call history with known answers, written through the real stores (call records and queue).

Callers come back (by number, or only by the account they name), junk calls end without an agent, some
callers answer the survey, agents wrap up with every disposition. What the generator decided is kept as
`Truth`s, so a test computes every figure from them, never with the report's own code.
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import List, Optional

from ivr.call_result import CallResult
from ivr.events import Escalation, Turn
from ivr.queue import QueueStore
from ivr.queue.handoff import mask_account
from ivr.records import CallRecords

T0 = datetime(2026, 11, 10, 0, 0, tzinfo=timezone.utc)
DAYS = 10
CALLS = 320
PROMPTS = ("utter_greet", "utter_ask_account_number", "utter_ask_pin", "utter_ask_amount", "utter_ask_zip_code",
           "utter_ask_street", "utter_confirm_payment")
TASKS = (None, "balance", "bill_pay", "address_change")
REASONS = ("caller_request", "no_input", "no_match", "auth_failed", "frustration", "payment_declined")
OUTCOMES = ("self_served", "escalated", "abandoned", "ended")
FATES = ("wrapped_up", "taken", "abandoned", "callback", "callback_returned", "waiting", "not_queued")
DISPOSITIONS = ("resolved", "resolved", "resolved", "follow_up", "transferred", "caller_hung_up")


@dataclass
class Caller:
    number: Optional[str]
    account: str  # masked, as records keep it
    last_task: Optional[str] = None


@dataclass
class Truth:
    """What the generator decided for one call (and its queue entry, if any)."""
    call_id: str
    started: datetime
    outcome: str
    task: Optional[str]
    seconds: float
    reason: Optional[str]
    turns: List[Turn]
    tasks: List[dict] = field(default_factory=list)  # empty: a record from before tasks were kept
    fate: Optional[str] = None
    enqueued: Optional[datetime] = None
    wait: Optional[float] = None  # enqueued -> taken, seconds
    handle: Optional[float] = None  # taken -> wrapped up, seconds
    callback: bool = False
    number: Optional[str] = None  # the caller's number, when the line gave one
    account: Optional[str] = None  # the masked account, when the caller named one
    disposition: Optional[str] = None
    junk: Optional[str] = None
    survey: Optional[dict] = None  # the record's csat


@dataclass
class History:
    var: Path
    truths: List[Truth] = field(default_factory=list)


@dataclass
class SurveyedCall(CallResult):
    """A CallResult with the junk and survey fields the call records keep (in their JSON `more`)."""
    junk: Optional[str] = None
    csat: Optional[dict] = None

    def as_dict(self):
        return {**super().as_dict(), "junk": self.junk, "csat": self.csat}


def random_turns(rng: random.Random) -> List[Turn]:
    turns = []
    for _ in range(rng.randint(0, 6)):
        prompt, shape = rng.choice(PROMPTS), rng.random()
        if shape < 0.12:
            turns.append(Turn(kind="no_input", prompt=prompt, bot=["Sorry, I didn't hear anything."]))
        elif shape < 0.20:
            turns.append(Turn(said="mumble", prompt=prompt, heard="", bot=["Sorry?"]))  # nothing recognised
        elif shape < 0.32:
            turns.append(Turn(said="banana", prompt=prompt, heard="banana phone", intent="nlu_fallback",
                              confidence=0.31, bot=["Sorry, I didn't get that."]))
        elif shape < 0.38:
            turns.append(Turn(said="weather", prompt=prompt, heard="what's the weather", intent="out_of_scope",
                              confidence=0.7, bot=["I can't help with that."]))
        elif shape < 0.55:
            turns.append(Turn(said="dtmf:1234#", kind="dtmf", prompt=prompt, heard="1234", intent="inform",
                              confidence=1.0, bot=["Thanks."]))
        else:
            turns.append(Turn(said="pay my bill", prompt=prompt, heard="pay my bill", intent="pay_bill",
                              confidence=round(rng.uniform(0.5, 1.0), 3), bot=["Sure."],
                              latency={"asr": 0.02, "dialog": 0.09}))
    return turns


def random_tasks(rng: random.Random, outcome: str, task: Optional[str]) -> List[dict]:
    """The tasks a call started: its last one, completed only when self-served, sometimes after one it
    left (cancelled or switched from), sometimes after another it finished; a fifth keep no list."""
    if task is None or rng.random() < 0.2:
        return []
    shape, other = rng.random(), rng.choice([t for t in TASKS[1:] if t != task])
    before = [{"task": other, "completed": False}] if shape < 0.25 else \
        [{"task": other, "completed": True}] if shape < 0.4 and outcome == "self_served" else []
    return [*before, {"task": task, "completed": outcome == "self_served"}]


def random_caller(rng: random.Random, callers: List[Caller]) -> Caller:
    """A new caller, or one who called before (a third of calls): repeat callers."""
    if callers and rng.random() < 0.35:
        return rng.choice(callers)
    k = len(callers)
    caller = Caller(f"+1555{k:07d}", mask_account(f"{k:03d}000{k:03d}"))
    callers.append(caller)
    return caller


def random_survey(rng: random.Random, truth: Truth) -> Optional[dict]:
    """Asked after some completed tasks and some agents' wrap-ups; answered by keypad or voice, or skipped."""
    served = truth.outcome == "self_served" or truth.fate in ("wrapped_up", "callback_returned")
    if truth.junk or not truth.task or not served or rng.random() < 0.4:
        return None
    # after an agent's call the record names the agent (alice wraps everyone up)
    agent = {"agent": "alice"} if truth.outcome == "escalated" else {}
    if rng.random() < 0.3:
        return {"asked": True, "score": None, "by": None, **agent}
    return {"asked": True, "score": rng.randint(1, 5), "by": rng.choice(("keypad", "voice")), **agent}


def random_call(rng: random.Random, number: int, callers: List[Caller]) -> Truth:
    started = T0 + timedelta(milliseconds=rng.randrange(DAYS * 86_400_000))
    caller = random_caller(rng, callers)
    if rng.random() < 0.08:  # dead air or a prank: ended by the bot, no task, no agent
        return Truth(f"call-{number:04d}", started, "ended", None, rng.randrange(8_000, 40_000) / 1000, None, [],
                     number=caller.number, junk=rng.choice(("dead_air", "prank")))
    outcome = rng.choices(OUTCOMES, weights=(45, 35, 12, 8))[0]
    task = rng.choice(TASKS) if outcome != "self_served" else rng.choice(TASKS[1:])
    if caller.last_task and rng.random() < 0.6:
        task = caller.last_task  # about the same thing as last time
    caller.last_task = task or caller.last_task
    truth = Truth(f"call-{number:04d}", started, outcome, task, rng.randrange(3_000, 600_000) / 1000,
                  rng.choice(REASONS) if outcome == "escalated" else None, random_turns(rng),
                  random_tasks(rng, outcome, task))
    # The line gives the number most times; the caller names their account on about half the calls.
    truth.number = caller.number if rng.random() < 0.85 else None
    truth.account = caller.account if rng.random() < 0.5 else None
    return truth


def generate(var: Path, rng: random.Random) -> History:
    history, callers = History(var), []
    records = CallRecords(f"sqlite:///{var / 'calls.db'}")
    queue = QueueStore(f"sqlite:///{var / 'queue.db'}")
    queue.add_agent("alice", "a long password", ["en", "billing", "address"])
    queue.set_agent_state("alice", "available", now=T0)
    try:
        for number in range(CALLS):
            truth = random_call(rng, number, callers)
            escalation = Escalation(truth.reason, summary=f"Caller {number} wants a person.", task=truth.task,
                                    frustration=round(rng.random(), 2), caller_number=truth.number,
                                    call_id=truth.call_id, channel="sip",
                                    account=truth.account) if truth.reason else None
            entry, queue_outcome = None, None
            if escalation:
                truth.fate = rng.choice(FATES)
                if truth.fate != "not_queued":
                    entry, queue_outcome = queue_history(queue, rng, truth, escalation)
            truth.survey = random_survey(rng, truth)
            records.save(SurveyedCall(
                truth.call_id, truth.outcome, truth.task, escalation, ["Hello, how can I help?"], truth.turns,
                truth.seconds, started_at=truth.started, ended_at=truth.started + timedelta(seconds=truth.seconds),
                channel="sip", caller_number=truth.number, queue_entry=entry, queue_outcome=queue_outcome,
                tasks=truth.tasks, account=None if escalation else truth.account, junk=truth.junk,
                csat=truth.survey))
            history.truths.append(truth)
    finally:
        records.close()
        queue.close()
    return history


def queue_history(queue: QueueStore, rng: random.Random, truth: Truth, escalation: Escalation):
    """Put the caller through the real queue as their fate says; returns (entry id, the call's queue outcome)."""
    truth.enqueued = truth.started + timedelta(seconds=truth.seconds)
    entry = queue.enqueue(escalation, now=truth.enqueued).id
    # Some waits sit exactly on the service-level threshold: "within 20 s" includes 20 s.
    wait = 20.0 if rng.random() < 0.1 else rng.randrange(0, 150_000) / 1000
    at = truth.enqueued + timedelta(seconds=wait)
    fate = truth.fate
    if fate == "waiting":
        return entry, "waiting"
    if fate == "abandoned":
        queue.abandon(entry, now=at)
        return entry, "abandoned"
    if fate.startswith("callback"):
        truth.callback = True
        queue.request_callback(entry, "+1 312 555 0100", now=at)
        if fate == "callback":
            return entry, "callback"
        wait += rng.randrange(60_000, 1_800_000) / 1000  # called back later
        at = truth.enqueued + timedelta(seconds=wait)
    truth.wait = wait
    wraps_up = fate in ("wrapped_up", "callback_returned")
    agent = "alice" if wraps_up else _agent_who_keeps(queue, entry)  # an agent holds one caller at a time
    queue.take(entry, agent, now=at)
    if wraps_up:
        truth.handle = rng.randrange(30_000, 900_000) / 1000
        truth.disposition = rng.choice(DISPOSITIONS)
        queue.wrap_up(entry, agent, truth.disposition, now=at + timedelta(seconds=truth.handle))
    return entry, "callback" if truth.callback else "taken"


def _agent_who_keeps(queue: QueueStore, entry: int) -> str:
    """A colleague of alice's who takes this caller and is still with them when the history ends."""
    name = f"keeps-{entry}"
    queue.add_agent(name, "a long password", ["en", "billing", "address"])
    queue.set_agent_state(name, "available", now=T0)
    return name
