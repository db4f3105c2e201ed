"""ZIP code to city and state, offline, from the `zipcodes` package's bundled USPS data."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import zipcodes


@dataclass(frozen=True)
class Place:
    city: str
    state: str  # two-letter USPS code


def place_for_zip(zip_code: str) -> Optional[Place]:
    """The city and state a five-digit ZIP belongs to, or None for one that is malformed or does not exist."""
    text = zip_code.strip()
    if len(text) != 5 or not (text.isascii() and text.isdigit()):
        return None
    matches = zipcodes.matching(text)
    # A retired ZIP still names its place, but a live one is what a caller moving house means.
    matches.sort(key=lambda match: not match.get("active", True))
    return Place(city=matches[0]["city"], state=matches[0]["state"]) if matches else None
