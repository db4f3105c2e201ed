"""Phone numbers as the line gives them (a SIP From user, a keyed number): which ones are numbers at all.

One place for the rule, used by the hold and the queue store (a number we can call back: the one a caller keys,
or their line's when a call is lost) and the reports (a number that tells one caller from another). A line's "anonymous", "unknown" or an extension is no phone number, and must never join
every caller who withheld theirs into one.
"""
from __future__ import annotations

from typing import Optional

import phonenumbers

REGION = "US"  # how a number without a leading + is read


def _parsed(text: str) -> Optional[phonenumbers.PhoneNumber]:
    try:
        return phonenumbers.parse(text, REGION)
    except phonenumbers.NumberParseException:
        return None


def _e164(number: phonenumbers.PhoneNumber) -> str:
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def callback_number(keyed: str) -> Optional[str]:
    """A number we can call back, as E.164 (+12175550123), or None."""
    number = _parsed(keyed)
    return _e164(number) if number is not None and phonenumbers.is_valid_number(number) else None


def caller_number(given: Optional[str]) -> Optional[str]:
    """The line's caller number as E.164 when it has the shape of a phone number (its length for its country;
    the numbering plan is not asked, so fictional 555 numbers still count), else None."""
    number = _parsed(given) if given and any(c.isdigit() for c in given) else None
    return _e164(number) if number is not None and phonenumbers.is_possible_number(number) else None
