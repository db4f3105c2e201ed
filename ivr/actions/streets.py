"""House number and street from one answer ("twelve oak street" → 12, Oak Street), and the street
names that bias the recognizer when the caller is asked for theirs."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from ivr.asr.numbers import numeric, spoken_digits, words

# USPS street suffixes callers say or a recognizer abbreviates (Publication 28, the common ones).
SUFFIXES = {"st": "Street", "street": "Street", "ave": "Avenue", "av": "Avenue", "avenue": "Avenue",
            "rd": "Road", "road": "Road", "dr": "Drive", "drive": "Drive", "ln": "Lane", "lane": "Lane",
            "blvd": "Boulevard", "boulevard": "Boulevard", "ct": "Court", "court": "Court", "pl": "Place",
            "place": "Place", "way": "Way", "ter": "Terrace", "terrace": "Terrace", "cir": "Circle",
            "circle": "Circle", "pkwy": "Parkway", "parkway": "Parkway", "hwy": "Highway", "highway": "Highway",
            "trl": "Trail", "trail": "Trail", "sq": "Square", "square": "Square", "loop": "Loop"}
DIRECTIONS = {"n": "North", "s": "South", "e": "East", "w": "West", "nw": "Northwest", "ne": "Northeast",
              "sw": "Southwest", "se": "Southeast"}
LEADING = {"it's", "its", "it", "is", "i", "live", "at", "my", "address", "the", "new", "um", "uh"}
# The most common US street names (Census and USPS counts agree on these).
COMMON_NAMES = ("Main", "Oak", "Pine", "Maple", "Cedar", "Elm", "Washington", "Lake", "Hill", "Park", "Walnut",
                "Church", "Spring", "Ridge", "Lincoln", "Jackson", "Sunset", "Highland", "Mill", "Chestnut",
                "First", "Second", "Third", "Fourth", "Fifth", "Sixth", "Seventh", "Eighth", "Ninth", "Tenth")
COMMON_SUFFIXES = ("Street", "Avenue", "Road", "Drive", "Lane", "Boulevard", "Court", "Way")


@dataclass(frozen=True)
class StreetAddress:
    house_number: str
    street: str


def parse_street(text: str) -> Optional[StreetAddress]:
    tokens = [t for t in words(text)]
    while tokens and tokens[0] in LEADING:
        tokens.pop(0)
    count = 0
    while count < len(tokens) and numeric(tokens[count]) and count < 4:
        count += 1
    number = spoken_digits(tokens[:count]) if count else ""
    name = [_word(t) for t in tokens[count:]]
    if not number or not name or all(t in SUFFIXES for t in tokens[count:]):
        return None
    return StreetAddress(number, " ".join(name))


def _word(token: str) -> str:
    return SUFFIXES.get(token) or DIRECTIONS.get(token) or token.capitalize()


def street_hints() -> list[str]:
    """Phrases for the recognizer's prompt: common names with common suffixes."""
    return [f"{name} {suffix}" for name in COMMON_NAMES[:12] for suffix in COMMON_SUFFIXES[:3]] + list(COMMON_SUFFIXES)
