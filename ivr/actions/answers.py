"""Reading a caller's short answers: yes or no, digits, and what the bot says back."""
from __future__ import annotations

import re
from datetime import date
from typing import Optional

from ivr.asr.numbers import yes_or_no as spoken_yes_or_no


def yes_or_no(text: str) -> Optional[bool]:
    """True, False, or None when the answer is neither. Words, not the intent classifier: a
    confident "affirm" for nonsense must never confirm a payment."""
    if text.startswith("/"):  # silence ("/no_input") or a sealed answer: never a yes or a no
        return None
    answer = spoken_yes_or_no(text)
    return {"yes": True, "no": False}.get(answer)


def digits_in(text: str) -> str:
    return re.sub(r"\D", "", text)


def has_letters(text: str) -> bool:
    return bool(re.search(r"[a-z]", text.lower()))


def one_by_one(digits: str) -> str:
    """Digits read back one at a time: "4 8 1 5"."""
    return " ".join(digits)


def spoken_date(day: date) -> str:
    return f"{day:%B} {day.day}, {day.year}"
