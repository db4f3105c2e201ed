"""Who is served first, and by whom: priority from why the caller came, skills from what they want, and
care for an upset caller.

The store orders callers by priority plus ageing (one level per AGEING_SECONDS waited, so nobody
waits forever behind higher priorities), then first come, first served.

An upset caller (frustration at or above `CareRules.upset_at`: the dialog's frustration threshold in
dialogs/voice.yml, where the bot acknowledges it and transfers, so the queue and the dialog never disagree) is
served before calm ones and offered first only to agents with the `deescalation` skill: for
`deescalation_wait_s` after joining the queue, then to anyone, so care never turns into a long wait. When no de-escalation agent who could take them (their language, their topic) is on
duty, nobody is worth waiting for: anyone may take them at once.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Iterable, Mapping, Optional

from ivr.dialog.frustration import FrustrationSettings
from ivr.errors import UserError
from ivr.events import Escalation
from ivr.queue.model import OFFLINE

AGEING_SECONDS = 120.0
NORMAL, HIGH, URGENT = 1, 2, 3
DEESCALATION = "deescalation"  # the skill of agents trained to calm an upset caller
DEESCALATION_WAIT_S = 30.0  # how long an upset caller is kept for them before anyone may take the caller
WAIT_VARIABLE = "IVR_DEESCALATION_WAIT_S"

# Reasons that mean the bot failed the caller on something that matters to them.
_HIGH_REASONS = {"frustration", "payment_declined", "payment_failed", "store_unavailable", "dialog_failure"}
_TASK_SKILL = {"bill_pay": "billing", "balance": "billing", "address_change": "address"}
TOPICS = tuple(sorted(set(_TASK_SKILL.values())))  # the skills besides a language: ("address", "billing")
AGENT_SKILLS = TOPICS + (DEESCALATION,)  # what an agent may have besides languages


@dataclass(frozen=True)
class CareRules:
    """How an upset caller is routed: who counts as upset, and how long they wait for a de-escalation agent."""
    upset_at: float = FrustrationSettings.threshold  # the dialog's: open_queue gives voice.yml's
    deescalation_wait_s: float = DEESCALATION_WAIT_S

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ,
                 upset_at: float = FrustrationSettings.threshold) -> "CareRules":
        """Upset at `upset_at` (the dialog's frustration threshold); IVR_DEESCALATION_WAIT_S (seconds, 0 turns the
        preference off), else the default wait."""
        given = env.get(WAIT_VARIABLE, "").strip()
        if not given:
            return cls(upset_at)
        try:
            wait = float(given)
        except ValueError:
            wait = -1.0
        if not 0 <= wait <= 3600:
            raise UserError(f"{WAIT_VARIABLE} is seconds from 0 to 3600 (how long an upset caller waits for a "
                            f"de-escalation agent), not {given!r}")
        return cls(upset_at, wait)

    def upset(self, frustration: float) -> bool:
        return frustration >= self.upset_at

    def kept_for_care(self, frustration: float, waited_s: float, care_on_duty: bool) -> bool:
        """Only a de-escalation agent may take this caller now."""
        return care_on_duty and self.upset(frustration) and waited_s < self.deescalation_wait_s


def gives_care(skills: Iterable[str]) -> bool:
    return DEESCALATION in skills


def care_on_duty(needs: Iterable[Optional[str]], staff: Iterable[tuple[str, Iterable[str]]]) -> bool:
    """Some de-escalation agent not offline who could take this caller (their language, their topic) is on
    duty: only such an agent is worth keeping an upset caller for. `staff`: each agent's (state, skills)."""
    needed = {need for need in needs if need}
    return any(state != OFFLINE and gives_care(skills) and needed <= set(skills) for state, skills in staff)


def priority(escalation: Escalation, care: CareRules = CareRules()) -> int:
    """An upset caller (`care`) one level up: served before calm callers who came for the same reason."""
    level = HIGH if escalation.reason in _HIGH_REASONS or escalation.reason.startswith("payment") else NORMAL
    if care.upset(escalation.frustration):
        level += 1
    return min(level, URGENT)


def skills(escalation: Escalation) -> tuple[str, ...]:
    needed = [escalation.language or "en"]
    if escalation.task in _TASK_SKILL:
        needed.append(_TASK_SKILL[escalation.task])
    return tuple(needed)
