"""Address change: ZIP first, the city and state it gives confirmed, then the street; the whole
address read back, and only the wrong part asked again."""
from __future__ import annotations

import re
from typing import Any, Optional

from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.executor import CollectingDispatcher

from ivr.accounts import Address, BadAddress, StoreUnavailable, place_for_zip
from ivr.actions.answers import digits_in, one_by_one, yes_or_no
from ivr.actions.authentication import not_digits, offer_agent_instead, reject, stop_asking
from ivr.actions.failures import OFFER_AFTER, failures_in_a_row
from ivr.actions.stores import backing, identified_account, transfer_after_trouble
from ivr.actions.streets import parse_street
from ivr.actions.tasks import task_done, transfer_with_apology
from ivr.asr.numbers import with_digits

ZIP_DIGITS = 5
PLACE_SLOTS = ("zip_code", "place_confirmed", "city", "state", "state_name")
STREET_SLOTS = ("street_address", "house_number", "street")
ADDRESS_SLOTS = (*PLACE_SLOTS, *STREET_SLOTS, "address_confirmed", "wrong_part", "new_address_spoken")


def state_name(code: str) -> str:
    import us

    state = us.states.lookup(code)
    return state.name if state else " ".join(code)


def said_zip(text: str) -> Optional[str]:
    """A 5-digit number in an answer that is not only a number ("no, it's 62701", "the zip is 10001")."""
    numbers = re.findall(r"\b\d+\b", with_digits(text))
    return next((n for n in numbers if len(n) == ZIP_DIGITS), None)


def street_answer(house_number: str, street: str, city: Any, state_name: Any, zip_code: Any) -> dict[str, Any]:
    spoken = f"{house_number} {street}, {city}, {state_name}, {one_by_one(zip_code or '')}"
    return {"street_address": f"{house_number} {street}", "house_number": house_number, "street": street,
            "new_address_spoken": spoken}


def corrected_address(text: str, tracker: Tracker) -> Optional[dict[str, Any]]:
    """The one part the caller put right in the same breath ("no, the house number is 352", "no, it's
    12 Elm Street", "no, the ZIP is 10001"), with the address to read back again; None for none."""
    plain = re.sub(r"^(?:(?:no|nope|nah|not|wrong|actually|sorry|that's|it's|its|it|is|should|be)\b\s*)+", "",
                   with_digits(text))
    house = re.search(r"\b(?:house|building)?\s*number\s+(?:is\s+|should be\s+)?(\d{1,6})\b", plain)
    street = None if house else parse_street(plain)
    new_zip = said_zip(text) if not (house or street) else None
    place = place_for_zip(new_zip) if new_zip else None
    slots = {key: tracker.get_slot(key) for key in ("house_number", "street", "city", "state", "state_name", "zip_code")}
    if house:
        slots["house_number"] = house.group(1)
    elif street:
        slots["house_number"], slots["street"] = street.house_number, street.street
    elif place:
        slots.update(zip_code=new_zip, city=place.city, state=place.state, state_name=state_name(place.state))
    else:
        return None
    answer = street_answer(slots["house_number"], slots["street"], slots["city"], slots["state_name"], slots["zip_code"])
    place_slots = {key: slots[key] for key in ("zip_code", "city", "state", "state_name")}
    return {**answer, **place_slots, "place_confirmed": True, "address_confirmed": None}


class ValidateAddressForm(FormValidationAction):
    def name(self) -> str:
        return "validate_address_form"

    async def required_slots(self, domain_slots: list, dispatcher, tracker: Tracker, domain: dict) -> list:
        if stop_asking(tracker):
            return []
        slots = ["zip_code", "place_confirmed", "street_address", "address_confirmed"]
        return slots + ["wrong_part"] if tracker.get_slot("address_confirmed") is False else slots

    def validate_zip_code(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker,
                          domain: dict) -> dict[str, Any]:
        text = str(value or "")
        digits = digits_in(text)
        if len(digits) != ZIP_DIGITS:
            if failures_in_a_row(tracker, rejecting_now=True) >= OFFER_AFTER:
                return offer_agent_instead(dispatcher, "zip_code")
            not_digits(dispatcher, text, ZIP_DIGITS, "ZIP code")
            return {"zip_code": None}
        place = place_for_zip(digits)
        if place is None:
            return reject(dispatcher, tracker, "zip_code", f"I couldn't find ZIP code {one_by_one(digits)}.")
        return {"zip_code": digits, "city": place.city, "state": place.state, "state_name": state_name(place.state)}

    def validate_place_confirmed(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker,
                                 domain: dict) -> dict[str, Any]:
        text = str(value or "")
        answer = yes_or_no(text)
        if answer:
            return {"place_confirmed": True}
        new_zip = said_zip(text)
        if new_zip:  # "no, it's 62701": that ZIP, and its city to confirm
            return {**self.validate_zip_code(new_zip, dispatcher, tracker, domain), "place_confirmed": None}
        if answer is False:
            dispatcher.utter_message(text="Let's try the ZIP code again.")
            return {slot: None for slot in PLACE_SLOTS}
        return reject(dispatcher, tracker, "place_confirmed")

    def validate_street_address(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker,
                                domain: dict) -> dict[str, Any]:
        text = str(value or "")
        street = parse_street(text) if not text.startswith("/") else None
        if street is None:
            return reject(dispatcher, tracker, "street_address",
                          "" if text.startswith("/") else "I need the house number and the street, like 12 Oak Street.")
        return street_answer(street.house_number, street.street, tracker.get_slot("city"),
                             tracker.get_slot("state_name"), tracker.get_slot("zip_code"))

    def validate_address_confirmed(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker,
                                   domain: dict) -> dict[str, Any]:
        text = str(value or "")
        answer = yes_or_no(text)
        if answer:
            return {"address_confirmed": True}
        corrected = None if text.startswith("/") else corrected_address(text, tracker)
        if corrected:
            return corrected
        if answer is None:
            return reject(dispatcher, tracker, "address_confirmed")
        return {"address_confirmed": False}

    def validate_wrong_part(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker,
                            domain: dict) -> dict[str, Any]:
        corrected = None if str(value or "").startswith("/") else corrected_address(str(value), tracker)
        if corrected:  # "the house number is 352": nothing left to ask but the read-back
            return {**corrected, "wrong_part": None}
        text = str(value or "").lower()
        street = any(w in text for w in ("street", "house", "number", "road", "avenue"))
        place = any(w in text for w in ("city", "zip", "state", "town", "code"))
        if "all" in text or "everything" in text or "both" in text:
            street = place = True
        if not (street or place):
            return reject(dispatcher, tracker, "wrong_part")
        cleared = {slot: None for slot in (*(STREET_SLOTS if street else ()), *(PLACE_SLOTS if place else ()))}
        return {**cleared, "wrong_part": None, "address_confirmed": None}


class ChangeAddress(Action):
    """Writes the confirmed address, with its audit row."""

    def name(self) -> str:
        return "action_change_address"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict):
        if not tracker.get_slot("address_confirmed"):
            return []
        new = Address(tracker.get_slot("house_number"), tracker.get_slot("street"), tracker.get_slot("city"),
                      tracker.get_slot("state"), tracker.get_slot("zip_code"))
        try:
            backing().store.change_address(identified_account(tracker), new, call_id=tracker.sender_id)
        except StoreUnavailable:
            return transfer_after_trouble(dispatcher)
        except BadAddress:
            return transfer_with_apology(dispatcher, "I'm sorry, I couldn't save that address.", "address_failed")
        dispatcher.utter_message(text="Your address is updated.")
        return task_done(dispatcher, tracker, ADDRESS_SLOTS)
