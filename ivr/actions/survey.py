"""The one-question satisfaction survey: after a completed self-service task, when the caller closes
the call, a share of calls (voice.yml `survey.share`, drawn from the call id) hear "On a scale of 1 to
5 …". Any answer ends it: a digit 1 to 5, said or keyed, is the score; anything else (silence, "no",
"skip") skips it. Never after an escalation or a junk call."""
from __future__ import annotations

import hashlib
import re
from typing import Any

from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import FollowupAction, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from ivr.actions.stores import backing

SCORES = ("1", "2", "3", "4", "5")
SKIPPED = "skipped"
NUMBER_WORDS = {"one": "1", "two": "2", "three": "3", "four": "4", "five": "5"}


def drawn_for_survey(call_id: str, share: float) -> bool:
    """The same call id always draws the same way (a test or a replay knows); share 1 draws every call."""
    point = int.from_bytes(hashlib.sha256(call_id.encode()).digest()[:8], "big") / 2 ** 64
    return point < share


def survey_due(tracker: Tracker) -> bool:
    """A task was completed, none is half done, nobody was asked for and the call is no junk."""
    return (bool(tracker.get_slot("tasks_completed")) and not tracker.get_slot("open_task")
            and not tracker.get_slot("survey_asked") and not tracker.get_slot("escalation_reason")
            and not tracker.get_slot("junk")
            and drawn_for_survey(tracker.sender_id, backing().voice.survey.share))


def close_call(dispatcher: CollectingDispatcher, tracker: Tracker) -> list:
    """The caller is done: the survey first when this call is drawn for it, else goodbye."""
    if survey_due(tracker):
        return [SlotSet("survey_asked", True), FollowupAction("survey_form")]
    dispatcher.utter_message(response="utter_goodbye")
    return [SlotSet("call_ended", True)]


def score_in(answer: Any) -> str:
    """The first number in the answer when it is 1 to 5 ("4", "I'd give it a three"), else skipped. A bare
    spoken digit arrives as a digit already (the call writes it so for a digits question)."""
    for token in re.findall(r"[a-z]+|\d+", str(answer or "").lower()):
        number = NUMBER_WORDS.get(token, token)
        if number.isdigit():
            return number if number in SCORES else SKIPPED
    return SKIPPED


class ValidateSurveyForm(FormValidationAction):
    def name(self) -> str:
        return "validate_survey_form"

    async def validate_satisfaction(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker,
                                    domain: dict) -> dict:
        return {"satisfaction": score_in(value)}  # never asked again: the survey never keeps a caller


class SurveyThanks(Action):
    def name(self) -> str:
        return "action_survey_thanks"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict):
        scored = tracker.get_slot("satisfaction") in SCORES
        dispatcher.utter_message(response="utter_survey_thanks" if scored else "utter_goodbye")
        return [SlotSet("call_ended", True)]
