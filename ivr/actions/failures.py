"""How many caller turns in a row the bot has failed to understand, read from the tracker."""
from __future__ import annotations

from rasa_sdk import Tracker

NO_INPUT = "/no_input"
FAILED_INTENTS = {"no_input", "nlu_fallback", "out_of_scope"}
OFFER_AFTER = 3  # the third failure in a row offers an agent (after two reprompts)
REPROMPTS = ("utter_not_understood", "utter_offer_agent")
# Answers the forms collect: a validation setting one back to nothing rejected the caller's turn.
ANSWERS = {"account_number", "pin", "amount_cents", "use_card_on_file", "card_number", "card_expiry",
           "payment_confirmed", "zip_code", "place_confirmed", "street_address", "address_confirmed", "wrong_part"}


def failures_in_a_row(tracker: Tracker, rejecting_now: bool = False) -> int:
    """Consecutive failed caller turns, the newest included.

    The newest fails by its intent or silence, a validation rejecting it (`rejecting_now`, or an
    answer already reset), or an answer that fits no question (a yes when nothing was asked). An
    older turn failed if the bot rejected it or answered it with a reprompt, whatever its intent.
    """
    turns = _caller_turns(tracker)
    if not turns:
        return 0
    newest, replies = turns[-1]
    intent = (newest.get("parse_data") or {}).get("intent", {}).get("name")
    if not (rejecting_now or intent in FAILED_INTENTS or newest.get("text") == NO_INPUT or _rejected(replies)):
        return 0
    count = 1
    for _, replies in reversed(turns[:-1]):
        if not _reprompted(replies):
            break
        count += 1
    return count


def _caller_turns(tracker: Tracker) -> list[tuple[dict, list[dict]]]:
    """Each caller event with the events that followed it, up to the next one."""
    turns: list[tuple[dict, list[dict]]] = []
    for event in tracker.events:
        if event.get("event") == "user":
            turns.append((event, []))
        elif turns:
            turns[-1][1].append(event)
    return turns


def _rejected(replies: list[dict]) -> bool:
    return any(e.get("event") == "slot" and e.get("value") is None and e.get("name") in ANSWERS for e in replies)


def _reprompted(replies: list[dict]) -> bool:
    if _rejected(replies):
        return True
    for event in replies:
        name = (event.get("metadata") or {}).get("utter_action") or "" if event.get("event") == "bot" else ""
        if name in REPROMPTS or name.endswith("_rephrase"):
            return True
    return False


def was_silent(tracker: Tracker) -> bool:
    return tracker.latest_message.get("text") == NO_INPUT
