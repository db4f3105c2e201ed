"""A payment amount as the caller gave it → cents. The call has already written spoken amounts as
"50.25" (ivr.asr.numbers); the keypad gives cents ("5025" for $50.25), as the caller is told."""
from __future__ import annotations

import re
from typing import Optional

# "all" alone is not an amount: it stands in "no, that's all" and "that's all I wanted".
WHOLE_BALANCE = re.compile(r"\b(full|whole|entire|total|all of it|pay it all|all of the balance|all the balance|"
                           r"everything i owe|all i owe|the lot)\b")
NOTHING = re.compile(r"\b(zero|nothing|none)\b")


def parse_amount(text: str, balance_cents: int) -> Optional[int]:
    """Cents, or None when no amount can be read. Ranges are the dialog's business (0 and a billion
    come back as numbers so it can say why they are refused)."""
    text = text.strip().lower()
    if re.fullmatch(r"\d+", text):
        return int(text)
    decimal = re.fullmatch(r"\$?(\d+)\.(\d{2})", text)
    if decimal:
        return int(decimal.group(1)) * 100 + int(decimal.group(2))
    if re.search(r"\d", text):
        return None
    if NOTHING.search(text):
        return 0
    if WHOLE_BALANCE.search(text):
        return balance_cents
    return None


def spoken_amount(cents: int) -> str:
    """$120.75, as the bot says it (espeak-ng reads it as dollars and cents)."""
    sign = "minus " if cents < 0 else ""
    return f"{sign}${abs(cents) // 100:,}.{abs(cents) % 100:02d}"
