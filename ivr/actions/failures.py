"""How many caller turns in a row the bot has failed to understand, read from the tracker."""
from __future__ import annotations

from rasa_sdk import Tracker

NO_INPUT = "/no_input"
FAILED_INTENTS = {"no_input", "nlu_fallback", "out_of_scope"}
OFFER_AFTER = 3  # the third failure in a row offers an agent (after two reprompts)


def failures_in_a_row(tracker: Tracker, rejecting_now: bool = False) -> int:
    """Consecutive failed user turns, newest first; a validation rejection counts as one.

    `rejecting_now`: a validation about to reject the newest turn, which the tracker cannot show yet.
    """
    count = 0
    newest = True
    for event in reversed(tracker.events):
        if event.get("event") == "user":
            intent = (event.get("parse_data") or {}).get("intent", {}).get("name")
            failed = intent in FAILED_INTENTS or event.get("text") == NO_INPUT or _rejected_after(tracker, event)
            if failed or (newest and rejecting_now):
                count += 1
                newest = False
                continue
            break
    return count


def _rejected_after(tracker: Tracker, user_event: dict) -> bool:
    """Whether the account form's validation rejected what the caller said in this turn."""
    seen = False
    for event in tracker.events:
        if event is user_event:
            seen = True
        elif seen and event.get("event") == "user":
            return False
        elif seen and event.get("event") == "slot" and event.get("name") == "account_number" and event.get("value") is None:
            return True
    return False


def was_silent(tracker: Tracker) -> bool:
    return tracker.latest_message.get("text") == NO_INPUT
