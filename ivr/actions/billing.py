"""Balance and bill payment for an authenticated caller."""
from __future__ import annotations

import logging
import re
from datetime import date
from typing import Any, Optional

from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import FollowupAction, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from ivr.accounts import Account, Card, CardRefused, PaymentRefused, StoreUnavailable
from ivr.actions.amounts import parse_amount, spoken_amount
from ivr.actions.answers import digits_in, one_by_one, spoken_date, yes_or_no
from ivr.actions.authentication import offer_agent_instead, reject, stop_asking, store_trouble
from ivr.actions.failures import OFFER_AFTER, failures_in_a_row
from ivr.actions.stores import backing, identified_account, transfer_after_trouble
from ivr.actions.tasks import task_done, transfer_with_apology
from ivr.asr.numbers import normalise
from ivr.events import Expectation

REFUSED_BECAUSE = {PaymentRefused.NOTHING_DUE: ": there is nothing left to pay on this account",
                   PaymentRefused.TOO_LARGE: ": it is more than this account can take"}
log = logging.getLogger(__name__)
NEW_CARD = re.compile(r"\b(new|different|another|other)\b")
AMOUNT = Expectation("amount")
PAYMENT_SLOTS = ("amount_cents", "use_card_on_file", "card_number", "card_expiry", "payment_confirmed",
                 "card_last4", "card_token", "amount_spoken")


def caller_account(tracker: Tracker) -> Account:
    return backing().store.account(identified_account(tracker))


def stated_balance(dispatcher: CollectingDispatcher, tracker: Tracker) -> tuple[Optional[Account], list]:
    """The caller's account after saying its balance; or, the store being down, the transfer."""
    try:
        account = caller_account(tracker)
    except StoreUnavailable:
        return None, transfer_after_trouble(dispatcher)
    dispatcher.utter_message(text=balance_sentence(account))
    return account, []


class TellBalance(Action):
    def name(self) -> str:
        return "action_tell_balance"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict):
        account, transfer = stated_balance(dispatcher, tracker)
        if account is None:
            return transfer
        if account.last_payment:
            paid = account.last_payment
            dispatcher.utter_message(text=f"Your last payment was {spoken_amount(paid.amount_cents)} "
                                          f"on {spoken_date(paid.posted_at.date())}.")
        return task_done(dispatcher, tracker)


def balance_sentence(account: Account) -> str:
    balance = spoken_amount(account.balance_cents)
    if account.balance_cents <= 0:
        return f"Your balance is {balance}. Nothing is due."
    if account.past_due:
        return f"Your balance of {balance} is past due."
    due = f", due {spoken_date(account.due_date)}" if account.due_date else ""
    return f"Your balance is {balance}{due}."


class BeginPayment(Action):
    """States the balance, then collects the payment; with nothing due there is nothing to collect."""

    def name(self) -> str:
        return "action_begin_payment"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict):
        account, transfer = stated_balance(dispatcher, tracker)
        if account is None:
            return transfer
        if account.balance_cents <= 0:
            return task_done(dispatcher, tracker)
        card = account.card.last4 if account.card else None
        return [SlotSet("card_on_file", card), FollowupAction("pay_form")]


class ValidatePayForm(FormValidationAction):
    def name(self) -> str:
        return "validate_pay_form"

    async def required_slots(self, domain_slots: list, dispatcher, tracker: Tracker, domain: dict) -> list:
        if stop_asking(tracker):
            return []
        slots = ["amount_cents"]
        if tracker.get_slot("card_on_file"):
            slots.append("use_card_on_file")
        if not tracker.get_slot("card_on_file") or tracker.get_slot("use_card_on_file") is False:
            slots += ["card_number", "card_expiry"]
        return slots + ["payment_confirmed"]

    def validate_amount_cents(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker,
                              domain: dict) -> dict[str, Any]:
        text = str(value or "")
        try:
            balance = caller_account(tracker).balance_cents
        except StoreUnavailable:
            return store_trouble(dispatcher, "amount_cents")
        typed = text.isdigit()  # the keypad: cents, as the caller was told
        cents = int(text) if typed else (parse_amount(text, balance) if not text.startswith("/") else None)
        problem = "" if text.startswith("/") else self._amount_problem(cents, balance)  # silence: just ask again
        if problem is None and cents is not None:
            return {"amount_cents": float(cents), "amount_spoken": spoken_amount(cents)}
        if failures_in_a_row(tracker, rejecting_now=True) >= OFFER_AFTER:
            return offer_agent_instead(dispatcher, "amount_cents")
        if problem:
            dispatcher.utter_message(text=problem)
        return {"amount_cents": None}

    def _new_amount(self, text: str, tracker: Tracker) -> Optional[dict[str, Any]]:
        """"no, make it fifty" / "no, the full balance": the new amount, to confirm again."""
        balance = caller_account(tracker).balance_cents
        cents = parse_amount(normalise(text, AMOUNT), balance)
        if cents is None or self._amount_problem(cents, balance):
            return None
        return {"amount_cents": float(cents), "amount_spoken": spoken_amount(cents), "payment_confirmed": None}

    @staticmethod
    def _amount_problem(cents: Optional[int], balance: int) -> Optional[str]:
        if cents is None:
            return "I didn't catch an amount."
        if cents <= 0:
            return "The amount has to be more than zero."
        if cents > 2 * balance:
            return f"I can take at most {spoken_amount(2 * balance)} on this account."
        return None

    def validate_use_card_on_file(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker,
                                  domain: dict) -> dict[str, Any]:
        text = str(value or "").lower()
        answer = False if NEW_CARD.search(text) else yes_or_no(text)  # silence is neither: ask again
        if answer is not None:
            return {"use_card_on_file": answer}
        if failures_in_a_row(tracker, rejecting_now=True) >= OFFER_AFTER:
            return offer_agent_instead(dispatcher, "use_card_on_file")
        return {"use_card_on_file": None}

    def validate_card_number(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker,
                             domain: dict) -> dict[str, Any]:
        number = digits_in(backing().unsealed(str(value or "")) or "")
        if number and self._checks_out(number):
            return {"card_number": str(value)}  # still sealed: it is read once the expiry is known
        if failures_in_a_row(tracker, rejecting_now=True) >= OFFER_AFTER:
            return offer_agent_instead(dispatcher, "card_number")
        if number:
            dispatcher.utter_message(text="That card number doesn't check out.")
        elif not str(value or "").startswith("/no_input"):
            dispatcher.utter_message(text="For your security, please use the keypad for the card number.")
        return {"card_number": None}

    @staticmethod
    def _checks_out(number: str) -> bool:
        try:
            backing().cards.card(number)
        except CardRefused:
            return False
        return True

    def validate_card_expiry(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker,
                             domain: dict) -> dict[str, Any]:
        expiry = digits_in(str(value or ""))
        if str(value or "").startswith("/"):  # silence: the question again, nothing to explain
            return reject(dispatcher, tracker, "card_expiry")
        number = digits_in(backing().unsealed(tracker.get_slot("card_number")) or "")
        try:
            card = backing().cards.read(number, expiry, date.today())
        except CardRefused as refused:
            if failures_in_a_row(tracker, rejecting_now=True) >= OFFER_AFTER:
                return offer_agent_instead(dispatcher, "card_expiry")
            if refused.reason == CardRefused.EXPIRED:
                dispatcher.utter_message(text="That card has expired. Please key in another card.")
                return {"card_expiry": None, "card_number": None}
            dispatcher.utter_message(text="Please key the month and year as four digits, like 0 8 2 8.")
            return {"card_expiry": None}
        return {"card_expiry": expiry, "card_number": "keyed", "card_last4": card.last4, "card_token": card.token}

    def validate_payment_confirmed(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker,
                                   domain: dict) -> dict[str, Any]:
        text = str(value or "")
        answer = yes_or_no(text)
        if answer:
            return {"payment_confirmed": True}
        corrected = self._correction(text, tracker) if not text.startswith("/") else None
        if corrected:
            return corrected
        if answer is False:
            dispatcher.utter_message(text="All right, I won't make that payment. Let's start again.")
            return {slot: None for slot in PAYMENT_SLOTS}
        if failures_in_a_row(tracker, rejecting_now=True) >= OFFER_AFTER:
            return offer_agent_instead(dispatcher, "payment_confirmed")
        return {"payment_confirmed": None}


    def _correction(self, text: str, tracker: Tracker) -> Optional[dict[str, Any]]:
        """What the caller changed in the same breath: the card, or the amount; None for neither."""
        if NEW_CARD.search(text.lower()) and tracker.get_slot("card_on_file"):
            return {"use_card_on_file": False, "card_number": None, "card_expiry": None, "card_last4": None,
                    "card_token": None, "payment_confirmed": None}
        try:
            return self._new_amount(text, tracker)
        except StoreUnavailable:
            return None


class Pay(Action):
    """Posts the confirmed payment once, and reads back the confirmation number."""

    def name(self) -> str:
        return "action_pay"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict):
        if not tracker.get_slot("payment_confirmed"):
            return []
        cents = int(tracker.get_slot("amount_cents"))
        made = int(tracker.get_slot("payments_made") or 0)
        try:
            number = identified_account(tracker)  # this call checked the PIN for it, or nothing is paid
            card = self._card(tracker)
            paid = backing().store.pay(number, cents, card, idempotency_key=f"{tracker.sender_id}:{made + 1}")
        except PaymentRefused as refused:  # its message is for the log; the caller hears it in their words
            log.warning("call %s: payment refused (%s)", tracker.sender_id, refused.reason)
            why = REFUSED_BECAUSE.get(refused.reason, "")
            return transfer_with_apology(dispatcher, f"I'm sorry, the payment could not be made{why}.", "payment_failed")
        except StoreUnavailable:
            return transfer_after_trouble(dispatcher)
        dispatcher.utter_message(text=f"Thank you. Your payment of {spoken_amount(paid.amount_cents)} is done. "
                                      f"Your confirmation number is {one_by_one(paid.confirmation)}.")
        return [SlotSet("payments_made", made + 1), *task_done(dispatcher, tracker, PAYMENT_SLOTS)]

    @staticmethod
    def _card(tracker: Tracker) -> Card:
        if tracker.get_slot("card_token"):
            return Card(tracker.get_slot("card_last4"), tracker.get_slot("card_token"))
        return caller_account(tracker).card
