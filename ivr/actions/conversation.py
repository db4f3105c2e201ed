"""Reprompts, transfers to a person and the end of the call."""
from __future__ import annotations

from rasa_sdk import Action, Tracker
from rasa_sdk.events import FollowupAction, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from ivr.actions.failures import NO_INPUT, OFFER_AFTER, failures_in_a_row, was_silent
from ivr.actions.moves import last_question, latest_intent, resume, taking_time
from ivr.actions.survey import close_call

# Prompts with no rephrasing of their own: a reprompt after one of them is the menu (utter_greet_rephrase).
STATEMENTS = ("utter_offer_declined", "utter_not_served", "utter_line_purpose")


def reprompt(dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict, misfit: bool = False) -> list:
    """No-input or no-match: the last question again, rephrased; the third time, an agent is offered.

    `misfit`: the caller was understood, but the answer fits no question asked (a bare yes).
    """
    waited = tracker.get_slot("waiting")
    nudged = taking_time(dispatcher, tracker)  # silence while the caller takes the moment they asked for
    if nudged is not None:
        return nudged
    if waited and was_silent(tracker):  # the moment is over: the question again, as it was asked
        dispatcher.utter_message(response=last_question(tracker) or "utter_greet")
        return [SlotSet("waiting", 0)]
    if failures_in_a_row(tracker, rejecting_now=misfit) >= OFFER_AFTER:
        if tracker.get_slot("agent_offered"):  # silence or nonsense even at the offer: a person will do better
            dispatcher.utter_message(response="utter_transfer")
            return [SlotSet("escalation_reason", "no_input" if was_silent(tracker) else "no_match")]
        dispatcher.utter_message(response="utter_offer_agent")
        return [SlotSet("agent_offered", True)]
    if not was_silent(tracker):
        dispatcher.utter_message(response="utter_not_understood")
    prompt = (last_question(tracker) or "utter_greet").removesuffix("_rephrase")
    if prompt in STATEMENTS or prompt.startswith("utter_where_to_find"):
        prompt = "utter_greet"
    rephrased = f"{prompt}_rephrase"
    dispatcher.utter_message(response=rephrased if rephrased in domain.get("responses", {}) else prompt)
    return [SlotSet("waiting", 0)] if tracker.get_slot("waiting") else []


class Reprompt(Action):
    def name(self) -> str:
        return "action_reprompt"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict):
        # An answer (a number, a street) where no question asked for one was heard, but fits nothing.
        misfit = latest_intent(tracker) == "inform"
        return reprompt(dispatcher, tracker, domain, misfit=misfit)


class Yes(Action):
    """A yes only means something here as the answer to the offer of an agent."""

    def name(self) -> str:
        return "action_yes"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict):
        if last_question(tracker) == "utter_anything_else":
            dispatcher.utter_message(response="utter_what_else")
            return []
        if not tracker.get_slot("agent_offered"):
            return reprompt(dispatcher, tracker, domain, misfit=True)
        dispatcher.utter_message(response="utter_transfer")
        said = [e.get("text") for e in tracker.events if e.get("event") == "user"]
        silent = len(said) > 1 and said[-2] == NO_INPUT  # what led to the offer: silence, or not understood
        reason = tracker.get_slot("offered_for") or ("no_input" if silent else "no_match")
        return [SlotSet("escalation_reason", reason)]


class No(Action):
    def name(self) -> str:
        return "action_no"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict):
        question = last_question(tracker)
        done = tracker.get_slot("tasks_completed")
        if question == "utter_anything_else" or (question == "utter_line_purpose" and done):
            return close_call(dispatcher, tracker)  # all done: a content goodbye (the survey first, when drawn)
        if not tracker.get_slot("agent_offered"):
            return reprompt(dispatcher, tracker, domain, misfit=True)
        declined = [SlotSet("agent_offered", False), SlotSet("offered_for", None)]
        form = resume(tracker)
        if form:  # the task they were in the middle of goes on where it stopped
            dispatcher.utter_message(response="utter_carry_on")
            return [*declined, FollowupAction(form)]
        dispatcher.utter_message(response="utter_offer_declined")
        return declined


class TransferOnRequest(Action):
    """Hands the caller to a person; the call loop sees `escalation_reason` and transfers."""

    def name(self) -> str:
        return "action_transfer_caller_request"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict):
        return [SlotSet("escalation_reason", "caller_request")]


class TransferFrustrated(Action):
    """The call measured the caller's frustration at the threshold: acknowledged, then a person."""

    def name(self) -> str:
        return "action_transfer_frustrated"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict):
        return [SlotSet("escalation_reason", "frustration")]


class EndCall(Action):
    """The caller said goodbye: goodbye back, or first the survey after a completed task."""

    def name(self) -> str:
        return "action_end_call"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict):
        return close_call(dispatcher, tracker)
