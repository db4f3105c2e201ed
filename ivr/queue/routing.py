"""Who is served first: priority from why the caller came, skills from what they want.

The store orders callers by priority plus ageing (one level per AGEING_SECONDS waited, so nobody
waits forever behind higher priorities), then first come, first served.
"""
from __future__ import annotations

from ivr.events import Escalation

AGEING_SECONDS = 120.0
NORMAL, HIGH, URGENT = 1, 2, 3
FRUSTRATED_AT = 0.6  # a caller this upset is served before calm ones

# Reasons that mean the bot failed the caller on something that matters to them.
_HIGH_REASONS = {"frustration", "payment_declined", "payment_failed", "store_unavailable", "dialog_failure"}
_TASK_SKILL = {"bill_pay": "billing", "balance": "billing", "address_change": "address"}
TOPICS = tuple(sorted(set(_TASK_SKILL.values())))  # the skills besides a language: ("address", "billing")


def priority(escalation: Escalation) -> int:
    level = HIGH if escalation.reason in _HIGH_REASONS or escalation.reason.startswith("payment") else NORMAL
    if escalation.frustration >= FRUSTRATED_AT:
        level += 1
    return min(level, URGENT)


def skills(escalation: Escalation) -> tuple[str, ...]:
    needed = [escalation.language or "en"]
    if escalation.task in _TASK_SKILL:
        needed.append(_TASK_SKILL[escalation.task])
    return tuple(needed)
