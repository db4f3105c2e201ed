"""What a caller may say at any question besides its answer: ask for it again or for help, take a
moment, not know the answer, cancel, switch to another task, close the call, or need something the
bot does not do. The forms step aside for these (dialogs/data/rules.yml); this is what follows."""
from __future__ import annotations

from typing import Callable, Optional

from rasa_sdk import Action, Tracker
from rasa_sdk.events import FollowupAction, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from ivr.actions.failures import FREE_MOVES, WAIT_PROMPTS, was_silent

TASK_INTENTS = {"pay_bill": "bill_pay", "check_balance": "balance", "change_address": "address_change"}
TASK_FORMS = {"bill_pay": "pay_form", "address_change": "address_form"}
SPOKEN_TASKS = {"bill_pay": "payment", "balance": "balance", "address_change": "address change"}  # to the caller
# Answers each task collects, forgotten when the caller leaves it (identification is kept).
TASK_ANSWERS = {
    "bill_pay": ("amount_cents", "use_card_on_file", "card_number", "card_expiry", "payment_confirmed",
                 "card_last4", "card_token", "amount_spoken"),
    "address_change": ("zip_code", "place_confirmed", "city", "state", "state_name", "street_address",
                       "house_number", "street", "address_confirmed", "wrong_part", "new_address_spoken"),
}
NUDGES = 2  # "take your time" after the first "sure": with voice.yml's 20 s each, about a minute
# Where an answer is found, for a caller who does not know it (by the question's slot).
WHERE_TO_FIND = {"account_number": "utter_where_to_find_account_number", "pin": "utter_where_to_find_pin",
                 "card_number": "utter_where_to_find_card", "card_expiry": "utter_where_to_find_card",
                 "amount_cents": "utter_where_to_find_amount", "zip_code": "utter_where_to_find_zip_code"}
NOT_QUESTIONS = {*WAIT_PROMPTS, "utter_not_understood", "utter_dont_know", "utter_carry_on"}


def latest_intent(tracker: Tracker) -> str:
    return (tracker.latest_message.get("intent") or {}).get("name") or ""


def last_question(tracker: Tracker) -> Optional[str]:
    """The response name of the bot's last question, passing over "take your time" and help texts."""
    for event in reversed(tracker.events):
        name = (event.get("metadata") or {}).get("utter_action") if event.get("event") == "bot" else None
        if name and name not in NOT_QUESTIONS and not name.startswith("utter_help"):
            return name
    return None


def asked_slot(tracker: Tracker) -> Optional[str]:
    question = (last_question(tracker) or "").removesuffix("_rephrase")
    return question.removeprefix("utter_ask_") if question.startswith("utter_ask_") else None


def help_response(question: Optional[str], domain: dict, yes_no: bool) -> str:
    slot = (question or "").removesuffix("_rephrase").removeprefix("utter_ask_")
    named = f"utter_help_{slot}"
    if named in domain.get("responses", {}):
        return named
    return "utter_help_yes_no" if yes_no else "utter_help"


def taking_time(dispatcher: CollectingDispatcher, tracker: Tracker) -> Optional[list]:
    """The caller asked for a moment, or is silent while taking it: "take your time" (events), or None
    when it is time to ask the question again."""
    waited = int(tracker.get_slot("waiting") or 0)
    if latest_intent(tracker) == "wait":
        dispatcher.utter_message(response="utter_wait")
        return [SlotSet("waiting", 1)]
    if waited and was_silent(tracker) and waited <= NUDGES:
        dispatcher.utter_message(response="utter_still_waiting")
        return [SlotSet("waiting", waited + 1)]
    return None


def asked_again(tracker: Tracker) -> bool:
    """The question is being asked again for the caller (repeat, help, or after their moment), who
    should hear it as it was last asked (plain or rephrased)."""
    return latest_intent(tracker) in FREE_MOVES or bool(tracker.get_slot("waiting") and was_silent(tracker))


def ask(dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict, slot: str,
        question: Callable[[], None]) -> list:
    """A form's question, or "take your time" while the caller takes the moment they asked for."""
    nudged = taking_time(dispatcher, tracker)
    if nudged is not None:
        return nudged
    question()
    return [SlotSet("waiting", 0)] if tracker.get_slot("waiting") else []


class SayAgain(Action):
    """Repeat, help or wait. Inside a form only the help text is said here: the form then asks its
    question (or says "take your time"). Elsewhere the last question is what they are about."""

    def name(self) -> str:
        return "action_say_again"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict):
        asking = tracker.get_slot("requested_slot") if tracker.active_loop.get("name") else None
        if asking:
            if latest_intent(tracker) == "help":
                dispatcher.utter_message(response=help_response(f"utter_ask_{asking}", domain, yes_no=False))
            return []
        nudged = taking_time(dispatcher, tracker)
        if nudged is not None:
            return nudged
        question = last_question(tracker) or "utter_greet"
        if latest_intent(tracker) == "help":
            yes_no = question.startswith("utter_offer_agent")
            dispatcher.utter_message(response=help_response(question, domain, yes_no))
        dispatcher.utter_message(response=question)
        return [SlotSet("waiting", 0)]


class LeaveTask(Action):
    """The caller cancels, closes the call, switches to another task, needs something else, or does not
    know the answer: the form has stepped aside; nothing half-done is posted."""

    def name(self) -> str:
        return "action_leave_task"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict):
        intent, task = latest_intent(tracker), tracker.get_slot("open_task")
        if intent in TASK_INTENTS:
            return self._switch(tracker, TASK_INTENTS[intent])
        if intent == "dont_know":
            where = WHERE_TO_FIND.get(asked_slot(tracker) or "")
            dispatcher.utter_message(response=where or "utter_dont_know")
            dispatcher.utter_message(response="utter_offer_agent_instead")
            return [SlotSet("agent_offered", True), SlotSet("offered_for", "dont_know")]
        if intent == "out_of_scope":
            dispatcher.utter_message(response="utter_not_served")
            dispatcher.utter_message(response="utter_offer_agent_for_it")
            return [SlotSet("agent_offered", True), SlotSet("offered_for", "out_of_scope")]
        left = self._forget(task)
        if task:
            dispatcher.utter_message(text=f"All right, I've stopped the {SPOKEN_TASKS.get(task, 'task')}. "
                                          "Nothing was changed.")
        if intent == "goodbye":
            dispatcher.utter_message(response="utter_goodbye")
            return [*left, SlotSet("call_ended", True)]
        dispatcher.utter_message(response="utter_what_else")
        return left

    @staticmethod
    def _forget(task: Optional[str]) -> list:
        return [SlotSet("open_task", None), SlotSet("waiting", 0),
                *(SlotSet(slot, None) for slot in TASK_ANSWERS.get(task or "", ()))]

    def _switch(self, tracker: Tracker, new_task: str) -> list:
        """Straight to the new task; identification, given or half-given, is kept."""
        return [*self._forget(tracker.get_slot("open_task")), SlotSet("task", new_task),
                FollowupAction("action_start_task")]


def resume(tracker: Tracker) -> Optional[str]:
    """The form to go back to for a task the caller has not finished (after declining an agent)."""
    task = tracker.get_slot("open_task")
    if not task:
        return None
    if not tracker.get_slot("authenticated"):
        return "account_form"
    return TASK_FORMS.get(task)
