"""How many caller turns in a row the bot has failed to understand, read from the tracker."""
from __future__ import annotations

from typing import Optional

from rasa_sdk import Tracker

NO_INPUT = "/no_input"
FAILED_INTENTS = {"no_input", "nlu_fallback", "out_of_scope"}
# Asking for the question again, for help or for a moment is a caller taking part, never a failed try.
FREE_MOVES = {"repeat", "help", "wait"}
WAIT_PROMPTS = {"utter_wait", "utter_still_waiting"}  # silence after these is the caller taking their time
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
    Repeat, help, wait, and silence while the caller takes their time count neither way.
    """
    turns = _caller_turns(tracker)
    if not turns or _free(*turns[-1]):
        return 0
    newest, _, replies = turns[-1]
    intent = _intent(newest)
    if not (rejecting_now or intent in FAILED_INTENTS or newest.get("text") == NO_INPUT or _rejected(replies)):
        return 0
    count = 1
    for turn in reversed(turns[:-1]):
        if _free(*turn):
            continue
        if not _reprompted(turn[2]):
            break
        count += 1
    return count


def _intent(event: dict) -> Optional[str]:
    return (event.get("parse_data") or {}).get("intent", {}).get("name")


def _free(event: dict, prompt: Optional[str], replies: list[dict]) -> bool:
    return _intent(event) in FREE_MOVES or (event.get("text") == NO_INPUT and prompt in WAIT_PROMPTS)


def _caller_turns(tracker: Tracker) -> list[tuple[dict, Optional[str], list[dict]]]:
    """Each caller event, the bot's last prompt before it, and the events that followed it."""
    turns: list[tuple[dict, Optional[str], list[dict]]] = []
    prompt = None
    for event in tracker.events:
        if event.get("event") == "user":
            turns.append((event, prompt, []))
        elif turns:
            turns[-1][2].append(event)
        if event.get("event") == "bot":
            prompt = (event.get("metadata") or {}).get("utter_action") or prompt
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
