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


def open_queue(settings, wait_s: float = LOCK_WAIT_S, holder: Optional[str] = None,
               care: Optional[CareRules] = None) -> QueueStore:
    """`wait_s`: how long a statement waits for a busy database (calls use IN_CALL_WAIT_S); `holder`: the
    process queueing live callers, whose entries it keeps alive (ivr.queue.leases). Upset callers wait for a
    de-escalation agent as IVR_DEESCALATION_WAIT_S says (ivr.queue.routing). Who counts as upset is the dialog's
    frustration threshold (dialogs/voice.yml), read here unless `care` is given by one who has read it already."""
    if care is None:
        from ivr.dialog.settings import load_voice_settings

        care = CareRules.from_env(upset_at=load_voice_settings(settings.dialogs_dir).frustration.threshold)
    return QueueStore(queue_url(settings), wait_s, holder, care)


__all__ = ["ABANDONED", "AgentBusy", "AGENT_STATES", "AVAILABLE", "BUSY", "CALLBACK", "DISPOSITIONS", "LOST", "OFFLINE", "ROUTABLE", "TAKEN",
           "WAITING", "WRAP_UP", "WRAPPED_UP", "Agent", "AlreadyTaken", "BadAgent", "Position", "QueueEntry",
           "QueueError", "QueueEvent", "QueueStore", "QueueUnavailable", "UnknownEntry", "agent_skills", "open_queue",
           "queue_url"]
