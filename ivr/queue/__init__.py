"""The escalation queue: callers handed to people, agents, routing, wait estimates and callbacks."""
from __future__ import annotations

import os
from typing import Mapping, Optional

from ivr import storage
from ivr.storage import LOCK_WAIT_S
from ivr.queue.model import (ABANDONED, AGENT_STATES, AVAILABLE, BUSY, CALLBACK, DISPOSITIONS, LOST, OFFLINE, ROUTABLE,
                             TAKEN, WAITING, WRAP_UP, WRAPPED_UP, Agent, AlreadyTaken, BadAgent, Position, QueueEntry,
                             QueueError, QueueEvent, QueueUnavailable, UnknownEntry, AgentBusy)
from ivr.queue.agents import agent_skills
from ivr.queue.routing import CareRules
from ivr.queue.store import QueueStore


def queue_url(settings, env: Mapping[str, str] = os.environ) -> str:
    """IVR_DATABASE_URL when set (the queue's tables sit beside the accounts'), else SQLite var/queue.db."""
    return storage.database_url(settings, "queue.db", env)


def open_queue(settings, wait_s: float = LOCK_WAIT_S, holder: Optional[str] = None) -> QueueStore:
    """`wait_s`: how long a statement waits for a busy database (calls use IN_CALL_WAIT_S); `holder`: the
    process queueing live callers, whose entries it keeps alive (ivr.queue.leases). Upset callers wait for a
    de-escalation agent as IVR_DEESCALATION_WAIT_S says (ivr.queue.routing)."""
    return QueueStore(queue_url(settings), wait_s, holder, CareRules.from_env())


__all__ = ["ABANDONED", "AgentBusy", "AGENT_STATES", "AVAILABLE", "BUSY", "CALLBACK", "DISPOSITIONS", "LOST", "OFFLINE", "ROUTABLE", "TAKEN",
           "WAITING", "WRAP_UP", "WRAPPED_UP", "Agent", "AlreadyTaken", "BadAgent", "Position", "QueueEntry",
           "QueueError", "QueueEvent", "QueueStore", "QueueUnavailable", "UnknownEntry", "agent_skills", "open_queue",
           "queue_url"]
