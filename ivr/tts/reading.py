"""How a prompt's text is read aloud where espeak-ng would read it wrong.

Prompts keep the written form ("$120.75"), which is what transcripts and agents see; espeak-ng
says that as "dollar one hundred and twenty point seven five", so money is spelled out here.
"""
from __future__ import annotations

import re

MONEY = re.compile(r"\$(\d{1,3}(?:,\d{3})*|\d+)(?:\.(\d{2}))?")


def read_aloud(text: str) -> str:
    return MONEY.sub(_money, text)


def _money(match: re.Match) -> str:
    dollars, cents = int(match.group(1).replace(",", "")), int(match.group(2) or 0)
    spoken = f"{dollars} dollar{'s' if dollars != 1 else ''}"
    if cents:
        spoken += f" and {cents} cent{'s' if cents != 1 else ''}"
    return spoken
