"""The caller's tasks: where each begins, and what follows one that is done."""
from __future__ import annotations

from rasa_sdk import Action, Tracker
from rasa_sdk.events import FollowupAction
from rasa_sdk.executor import CollectingDispatcher

FIRST_STEP = {"bill_pay": "action_begin_payment", "balance": "action_tell_balance", "address_change": "address_form"}


def next_step(task: str | None) -> str:
    return FIRST_STEP.get(task or "", "utter_what_else")


def task_done(dispatcher: CollectingDispatcher) -> list:
    """A task finished: the caller may have another, or hang up content."""
    dispatcher.utter_message(response="utter_anything_else")
    return []


class StartTask(Action):
    """Pay, balance or address: identify the caller first, once per call."""

    def name(self) -> str:
        return "action_start_task"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict):
        if tracker.get_slot("authenticated"):
            return [FollowupAction(next_step(tracker.get_slot("task")))]
        return [FollowupAction("account_form")]
