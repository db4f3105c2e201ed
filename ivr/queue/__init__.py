"""The escalation queue: callers handed to people, agents, routing, wait estimates and callbacks."""
from __future__ import annotations

import os
from typing import Mapping

from ivr import storage
from ivr.storage import LOCK_WAIT_S
from ivr.queue.model import (ABANDONED, AGENT_STATES, AVAILABLE, BUSY, CALLBACK, DISPOSITIONS, OFFLINE, ROUTABLE,
                             TAKEN, WAITING, WRAP_UP, WRAPPED_UP, Agent, AlreadyTaken, BadAgent, Position, QueueEntry,
                             QueueError, QueueEvent, QueueUnavailable, UnknownEntry)
from ivr.queue.store import QueueStore, agent_skills


def queue_url(settings, env: Mapping[str, str] = os.environ) -> str:
    """IVR_DATABASE_URL when set (the queue's tables sit beside the accounts'), else SQLite var/queue.db."""
    return storage.database_url(settings, "queue.db", env)


def open_queue(settings, wait_s: float = LOCK_WAIT_S) -> QueueStore:
    """`wait_s`: how long a statement waits for a busy database (calls use IN_CALL_WAIT_S)."""
    return QueueStore(queue_url(settings), wait_s)


__all__ = ["ABANDONED", "AGENT_STATES", "AVAILABLE", "BUSY", "CALLBACK", "DISPOSITIONS", "OFFLINE", "ROUTABLE", "TAKEN",
           "WAITING", "WRAP_UP", "WRAPPED_UP", "Agent", "AlreadyTaken", "BadAgent", "Position", "QueueEntry",
           "QueueError", "QueueEvent", "QueueStore", "QueueUnavailable", "UnknownEntry", "agent_skills", "open_queue",
           "queue_url"]
