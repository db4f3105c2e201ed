"""Who is calling: account number, read back digit by digit, then PIN, never read back.

Three failed tries lock the account for this call and hand the caller to an agent.
"""
from __future__ import annotations

from typing import Any

from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import FollowupAction
from rasa_sdk.executor import CollectingDispatcher

from ivr.accounts import StoreUnavailable, UnknownAccount
from ivr.actions.answers import digits_in, has_letters, one_by_one
from ivr.actions.failures import OFFER_AFTER, failures_in_a_row
from ivr.actions.moves import ask, asked_again, last_question
from ivr.actions.stores import backing
from ivr.actions.tasks import next_step

ACCOUNT_DIGITS, PIN_DIGITS, TRIES = 8, 4, 3


def stop_asking(tracker: Tracker) -> bool:
    """An agent was offered or the call is being transferred: the form ends without its answers."""
    return bool(tracker.get_slot("agent_offered") or tracker.get_slot("escalation_reason"))


def offer_agent_instead(dispatcher: CollectingDispatcher, slot: str) -> dict[str, Any]:
    dispatcher.utter_message(response="utter_offer_agent")
    return {slot: None, "agent_offered": True, "requested_slot": None}


def reject(dispatcher: CollectingDispatcher, tracker: Tracker, slot: str, why: str = "") -> dict[str, Any]:
    """The answer does not do: say why (if there is something to say) and ask again; the third time, an agent."""
    if failures_in_a_row(tracker, rejecting_now=True) >= OFFER_AFTER:
        return offer_agent_instead(dispatcher, slot)
    if why:
        dispatcher.utter_message(text=why)
    return {slot: None}


def store_trouble(dispatcher: CollectingDispatcher, slot: str) -> dict[str, Any]:
    dispatcher.utter_message(response="utter_store_trouble")
    return {slot: None, "escalation_reason": "store_unavailable", "requested_slot": None}


def not_digits(dispatcher: CollectingDispatcher, text: str, wanted: int, what: str) -> None:
    """Explain a wrong answer to a digits question; silence just gets the question again."""
    if text.startswith("/"):
        return
    digits = digits_in(text)
    if digits and not has_letters(text):
        dispatcher.utter_message(text=f"I heard {len(digits)} digit{'s' if len(digits) != 1 else ''}, "
                                      f"but your {what} has {wanted}.")
    else:
        dispatcher.utter_message(text=f"I need the {wanted} digits of your {what}.")


def rephrased_before(tracker: Tracker) -> bool:
    """Asked again for the caller (repeat, help, a moment), after the question was last rephrased."""
    return asked_again(tracker) and (last_question(tracker) or "").endswith("_rephrase")


class ValidateAccountForm(FormValidationAction):
    def name(self) -> str:
        return "validate_account_form"

    async def required_slots(self, domain_slots: list, dispatcher, tracker: Tracker, domain: dict) -> list:
        return [] if stop_asking(tracker) else ["account_number", "pin"]

    def validate_account_number(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker,
                                domain: dict) -> dict[str, Any]:
        text = str(value or "")
        digits = digits_in(text)
        if len(digits) == ACCOUNT_DIGITS and not has_letters(text.lstrip("/")):
            return {"account_number": digits}
        if failures_in_a_row(tracker, rejecting_now=True) >= OFFER_AFTER:
            return offer_agent_instead(dispatcher, "account_number")
        not_digits(dispatcher, text, ACCOUNT_DIGITS, "account number")
        return {"account_number": None}

    def validate_pin(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker,
                     domain: dict) -> dict[str, Any]:
        text = str(value or "")
        pin = digits_in(backing().unsealed(text) or "")
        if len(pin) != PIN_DIGITS:
            if failures_in_a_row(tracker, rejecting_now=True) >= OFFER_AFTER:
                return offer_agent_instead(dispatcher, "pin")
            if not text.startswith("/") or pin:
                dispatcher.utter_message(text=f"Your PIN has {PIN_DIGITS} digits.")
            return {"pin": None}
        try:
            matched = backing().store.check_pin(tracker.get_slot("account_number"), pin)
        except UnknownAccount:
            matched = False
        except StoreUnavailable:
            return store_trouble(dispatcher, "pin")
        if matched:
            account = tracker.get_slot("account_number")
            return {"pin": "verified", "authenticated": True, "identity": backing().seal.vouch(tracker.sender_id, account)}
        return self._failed_try(dispatcher, tracker)

    @staticmethod
    def _failed_try(dispatcher: CollectingDispatcher, tracker: Tracker) -> dict[str, Any]:
        tries = int(tracker.get_slot("auth_tries") or 0) + 1
        if tries >= TRIES:
            dispatcher.utter_message(response="utter_auth_locked")
            # The account tried stays: the agent who takes the caller sees which one was locked.
            return {"pin": None, "auth_tries": tries, "requested_slot": None, "escalation_reason": "auth_failed"}
        dispatcher.utter_message(response="utter_auth_mismatch")
        return {"pin": None, "account_number": None, "auth_tries": tries}


class AskAccountNumber(Action):
    """The form's question, rephrased when the caller was not understood the first time."""

    def name(self) -> str:
        return "action_ask_account_number"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict):
        failed = failures_in_a_row(tracker) > 0 or rephrased_before(tracker)
        return ask(dispatcher, tracker, domain, "account_number", lambda: dispatcher.utter_message(
            response="utter_ask_account_number_rephrase" if failed else "utter_ask_account_number"))


class AskPin(Action):
    """Reads the account number back, then asks for the PIN."""

    def name(self) -> str:
        return "action_ask_pin"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict):
        return ask(dispatcher, tracker, domain, "pin", lambda: self._question(dispatcher, tracker))

    @staticmethod
    def _question(dispatcher: CollectingDispatcher, tracker: Tracker) -> None:
        if failures_in_a_row(tracker) > 0 or rephrased_before(tracker):
            dispatcher.utter_message(response="utter_ask_pin_rephrase")
        else:
            number = one_by_one(tracker.get_slot("account_number") or "")
            dispatcher.utter_message(response="utter_ask_pin", account_digits=number)


class Authenticated(Action):
    """After the form: go on with what the caller called about."""

    def name(self) -> str:
        return "action_authenticated"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict):
        if not tracker.get_slot("authenticated"):
            return []
        return [FollowupAction(next_step(tracker.get_slot("task")))]
