"""Who is given back to the bot after an agent's call, to be asked about the agent: one rule, read by the call
when it hands the caller over (from the dialog's slots then) and by the dialog at "/agent_done" (its tracker's
slots), so a caller is never taken back from their agent only to hear goodbye."""
from __future__ import annotations

from typing import Any, Mapping

from ivr.dialog.settings import SurveySettings


def agent_survey_due(slots: Mapping[str, Any], call_id: str, survey: SurveySettings) -> bool:
    """The dialog handed the caller over (its escalation_reason; not the call's own transfer when the dialog
    failed), they were not asked the survey already, the call is no junk, and it is drawn (voice.yml
    survey.after_agent and survey.share)."""
    return (bool(slots.get("escalation_reason")) and not slots.get("survey_asked") and not slots.get("junk")
            and survey.after_agent_for(call_id))
