"""Calls that are no caller's need, ended by the bot without an agent: dead air (the call measures the
line and sends /dead_air) and pranks or flirting with no request (the NLU's `prank`). The `junk` slot
says which, for the call record."""
from __future__ import annotations

from rasa_sdk import Action, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

from ivr.actions.stores import backing

# A caller who asked for any of these has a real need: their chatter is never a reason to hang up.
REQUESTS = {"pay_bill", "check_balance", "change_address", "out_of_scope", "request_agent", "dont_know"}


def intents_said(tracker: Tracker) -> list[str]:
    return [(e.get("parse_data") or {}).get("intent", {}).get("name") or ""
            for e in tracker.events if e.get("event") == "user"]


class DeadAir(Action):
    """No voice at all on the line after the reprompts (voice.yml `junk_calls`): say so and hang up."""

    def name(self) -> str:
        return "action_dead_air"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict):
        dispatcher.utter_message(response="utter_dead_air")
        return [SlotSet("junk", "dead_air"), SlotSet("call_ended", True)]


class Prank(Action):
    """Flirting, pranks, chatter: once what the line is for; at the prank_turns-th time, with no request
    made in the call, a polite goodbye."""

    def name(self) -> str:
        return "action_prank"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict):
        said = intents_said(tracker)
        if not REQUESTS & set(said) and said.count("prank") >= backing().voice.junk.prank_turns:
            dispatcher.utter_message(response="utter_prank_goodbye")
            return [SlotSet("junk", "prank"), SlotSet("call_ended", True)]
        dispatcher.utter_message(response="utter_line_purpose")
        return []
