"""Collecting the caller's account number (a Rasa form with one validation per slot)."""
from __future__ import annotations

import re
from typing import Any

from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import ActiveLoop, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from ivr.actions.failures import OFFER_AFTER, failures_in_a_row

ACCOUNT_DIGITS = 8


def spoken_digits(digits: str) -> str:
    return " ".join(digits)


class ValidateAccountForm(FormValidationAction):
    def name(self) -> str:
        return "validate_account_form"

    def validate_account_number(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker,
                                domain: dict) -> dict[str, Any]:
        text = str(value or "")
        digits = re.sub(r"\D", "", text)
        if len(digits) == ACCOUNT_DIGITS and not re.search(r"[a-z]", text.lower().lstrip("/")):
            return {"account_number": digits}
        if failures_in_a_row(tracker, rejecting_now=True) >= OFFER_AFTER:
            dispatcher.utter_message(response="utter_offer_agent")
            return {"account_number": None, "agent_offered": True, "requested_slot": None}
        if text.startswith("/"):  # silence or nothing recognizable: the question is asked again
            return {"account_number": None}
        if digits:
            dispatcher.utter_message(text=f"I heard {len(digits)} digit{'s' if len(digits) != 1 else ''}, "
                                          f"but account numbers have {ACCOUNT_DIGITS}.")
        else:
            dispatcher.utter_message(text="I need the digits of your account number.")
        return {"account_number": None}


class AskAccountNumber(Action):
    """The form's question, rephrased when the caller was not understood the first time."""

    def name(self) -> str:
        return "action_ask_account_number"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict):
        if tracker.get_slot("agent_offered"):
            return [ActiveLoop(None), SlotSet("requested_slot", None)]
        failed = failures_in_a_row(tracker) > 0
        dispatcher.utter_message(response="utter_ask_account_number_rephrase" if failed else "utter_ask_account_number")
        return []


class AccountKnown(Action):
    """After the form: read the number back digit by digit and go on with the task.

    Tasks are not self-service yet, so the caller is handed to an agent. When the form ended because
    an agent was offered instead, there is nothing to read back: the caller's yes or no comes next.
    """

    def name(self) -> str:
        return "action_account_known"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict):
        number = tracker.get_slot("account_number")
        if not number:
            return []
        dispatcher.utter_message(text=f"Thank you. I have account {spoken_digits(number)}.")
        dispatcher.utter_message(response="utter_task_handoff")
        return [SlotSet("escalation_reason", "task_unavailable")]
