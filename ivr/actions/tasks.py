"""The caller's tasks: where each begins, and what follows one that is done."""
from __future__ import annotations

from typing import Iterable

from rasa_sdk import Action, Tracker
from rasa_sdk.events import FollowupAction, SlotSet
from rasa_sdk.executor import CollectingDispatcher

FIRST_STEP = {"bill_pay": "action_begin_payment", "balance": "action_tell_balance", "address_change": "address_form"}


def next_step(task: str | None) -> str:
    return FIRST_STEP.get(task or "", "utter_what_else")


def task_done(dispatcher: CollectingDispatcher, tracker: Tracker, answers: Iterable[str] = ()) -> list:
    """A task finished (its `answers` forgotten, for the next one): the caller may have another."""
    dispatcher.utter_message(response="utter_anything_else")
    done = [*(tracker.get_slot("tasks_completed") or []), tracker.get_slot("task")]
    return [SlotSet("task_completed", True), SlotSet("tasks_completed", done), SlotSet("open_task", None),
            *(SlotSet(slot, None) for slot in answers)]


def transfer_with_apology(dispatcher: CollectingDispatcher, apology: str, reason: str) -> list:
    """A task that cannot be finished here (a refused payment, an address the store will not take)."""
    dispatcher.utter_message(text=apology)
    dispatcher.utter_message(response="utter_transfer")
    return [SlotSet("escalation_reason", reason)]


class StartTask(Action):
    """Pay, balance or address: identify the caller first, once per call."""

    def name(self) -> str:
        return "action_start_task"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict):
        task = tracker.get_slot("task")
        # A task chosen over an offer of an agent answers the offer: the forms may ask again.
        started = [SlotSet("open_task", task), SlotSet("tasks_started", [*(tracker.get_slot("tasks_started") or []), task]),
                   SlotSet("agent_offered", False), SlotSet("offered_for", None)]
        if tracker.get_slot("authenticated"):
            return [*started, FollowupAction(next_step(task))]
        return [*started, FollowupAction("account_form")]
