"""Recognizer hints built from what the prompt expects."""
from __future__ import annotations

from typing import Optional

from ivr.events import Expectation

DIGIT_WORDS = ["zero", "oh", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
YES_NO_WORDS = ["yes", "yeah", "no", "nope", "correct", "right", "wrong"]
DOMAIN = ("I want to pay my bill. Check my balance. Change my address. "
          "Can I speak to an agent? Yes, that's right. No, goodbye.")


def whisper_prompt(expects: Expectation) -> str:
    if expects.kind == "digits":
        count = expects.length or 8
        example = " ".join("48151623421"[:count])
        return f"My number is {example}. The digits are: {' '.join('2718281828'[:count])}."
    if expects.kind == "yes_no":
        return "Yes. No. Yes, that's right. No, that's wrong."
    if expects.kind == "amount":
        return "I'll pay $50.25. The full balance. $120.75."
    return DOMAIN


def vosk_grammar(expects: Expectation) -> Optional[list[str]]:
    """Words a grammar-restricted Vosk recognizer may return, or None for open vocabulary."""
    if expects.kind == "digits":
        return [" ".join(DIGIT_WORDS), "[unk]"]
    if expects.kind == "yes_no":
        return [" ".join(YES_NO_WORDS), "[unk]"]
    return None
