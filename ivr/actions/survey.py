"""The one-question satisfaction survey: after a completed self-service task, when the caller closes
the call, a share of calls (voice.yml `survey.share`, drawn from the call id) hear "On a scale of 1 to
5 …". Any answer ends it: a digit 1 to 5, said or keyed, is the score; anything else (silence, "no",
"skip") skips it. Never after an escalation or a junk call, except after the agent's part of it: with
`survey.after_agent`, a drawn caller whose agent hangs up first is given back to the bot (the call sends
"/agent_done") and asked about the agent."""
from __future__ import annotations

import re
from typing import Any

from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import FollowupAction, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from ivr.actions.stores import backing
from ivr.dialog.agent_survey import agent_survey_due as after_agent_due
from ivr.dialog.settings import drawn_for_survey  # the draw, also the call's (voice.yml survey.share)

SCORES = ("1", "2", "3", "4", "5")
SKIPPED = "skipped"
NUMBER_WORDS = {"one": "1", "two": "2", "three": "3", "four": "4", "five": "5"}


def survey_due(tracker: Tracker) -> bool:
    """A task was completed, none is half done, nobody was asked for and the call is no junk."""
    return (bool(tracker.get_slot("tasks_completed")) and not tracker.get_slot("open_task")
            and not tracker.get_slot("survey_asked") and not tracker.get_slot("escalation_reason")
            and not tracker.get_slot("junk")
            and drawn_for_survey(tracker.sender_id, backing().voice.survey.share))


def agent_survey_due(tracker: Tracker) -> bool:
    """The caller was handed to an agent, who hung up first: the call's own rule for taking them back."""
    return after_agent_due(tracker.current_slot_values(), tracker.sender_id, backing().voice.survey)


def with_agent(tracker: Tracker) -> bool:
    """The caller came back to the bot from an agent ("/agent_done")."""
    return any(e.get("event") == "user" and (e.get("parse_data") or {}).get("intent", {}).get("name") == "agent_done"
               for e in tracker.events)


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


class AfterAgent(Action):
    """The agent hung up first and the call gave the caller back: the survey about the agent, or goodbye."""

    def name(self) -> str:
        return "action_after_agent"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict):
        done = [SlotSet("escalation_reason", None)]  # the hand-over is over: the call is the bot's again
        if agent_survey_due(tracker):
            return [*done, SlotSet("survey_asked", True), FollowupAction("survey_form")]
        dispatcher.utter_message(response="utter_goodbye")
        return [*done, SlotSet("call_ended", True)]


class AskSatisfaction(Action):
    """The survey's question: about the agent when the caller comes back from one, else about the call."""

    def name(self) -> str:
        return "action_ask_satisfaction"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict):
        agent = with_agent(tracker)
        dispatcher.utter_message(response="utter_ask_satisfaction_agent" if agent else "utter_ask_satisfaction")
        return []


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
