"""What the escalation queue holds and hands out: small frozen dataclasses, times in UTC."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Optional

from ivr.events import Escalation

# Where a queued caller stands.
WAITING = "waiting"  # on hold, on the line
CALLBACK = "callback"  # left the line asking to be called back; keeps their place
TAKEN = "taken"  # an agent has them (screen-pop shown; a live caller is being connected)
WRAPPED_UP = "wrapped_up"  # the agent finished, with a disposition
ABANDONED = "abandoned"  # hung up while waiting
LOST = "lost"  # their call was gone (the process holding it died) and no number to call them back on
ROUTABLE = (WAITING, CALLBACK)

# What an agent is doing.
AVAILABLE, BUSY, WRAP_UP, OFFLINE = "available", "busy", "wrap_up", "offline"
AGENT_STATES = (AVAILABLE, BUSY, WRAP_UP, OFFLINE)

# What a signed-in person may open: every agent the queue and their caller; a supervisor also the wallboard.
AGENT, SUPERVISOR = "agent", "supervisor"
ROLES = (AGENT, SUPERVISOR)

# How an agent closes a caller (wrap-up), in the words of the reports.
DISPOSITIONS = (
    "resolved",  # the caller got what they needed
    "follow_up",  # more work is owed to the caller
    "transferred",  # handed to another team
    "no_answer",  # called back, nobody answered
    "caller_hung_up",  # gone before the agent could help
)


@dataclass(frozen=True)
class QueueEntry:
    id: int
    escalation: Escalation  # the caller's context: summary, slots, transcript, frustration, reason
    priority: int  # higher is served first (before ageing)
    skills: tuple[str, ...]  # what the agent must have: the language, and billing or address when known
    state: str
    enqueued_at: datetime
    callback_number: Optional[str] = None
    agent: Optional[str] = None
    taken_at: Optional[datetime] = None
    ended_at: Optional[datetime] = None  # wrapped up or abandoned
    disposition: Optional[str] = None
    connected_at: Optional[datetime] = None  # the live caller was put through to the agent
    lost_at: Optional[datetime] = None  # their call was gone while on hold: lost, or a callback owed for it


@dataclass(frozen=True)
class Agent:
    name: str
    skills: tuple[str, ...]
    state: str
    state_since: datetime
    sip_address: Optional[str] = None
    role: str = AGENT

    @property
    def supervisor(self) -> bool:
        return self.role == SUPERVISOR


@dataclass(frozen=True)
class Position:
    """Where a waiting caller is: how many are served before them and about how long that takes."""
    ahead: int
    estimated_wait_s: float

    @property
    def place(self) -> int:
        return self.ahead + 1


@dataclass(frozen=True)
class QueueEvent:
    """One change to the queue, in order: the console's live feed and the reports' history."""
    id: int
    kind: str  # enqueued | callback | taken | connected | returned | wrapped_up | abandoned | lost | agent_added | agent_state
    at: datetime
    entry_id: Optional[int] = None
    agent: Optional[str] = None
    detail: str = ""  # e.g. the disposition, or the agent's new state


class QueueError(Exception):
    """Something about the queue a person can act on; the message says what."""


class QueueUnavailable(QueueError):
    """The queue's database cannot be reached."""


class AlreadyTaken(QueueError):
    """Another agent took this caller first (or they hung up)."""


class UnknownEntry(QueueError):
    pass


class BadAgent(QueueError):
    """Unknown agent, wrong password, bad name or skills."""


class KeptForCare(BadAgent):
    """An upset caller kept a little longer for an agent with the de-escalation skill (ivr.queue.routing)."""


class AgentBusy(QueueError):
    """The agent already holds a caller: one at a time, wrapped up before the next."""
