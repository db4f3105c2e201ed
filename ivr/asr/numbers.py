"""What a recognizer wrote, normalised for what the prompt expects.

Whisper writes digits as "26-0-8-1-5-9", "613-1860", "4.6 to 8" or words; callers say "oh" and
"double five". Number words go through text2num (alpha2digit); we add only the spoken-digit
homophones and "double/triple", which no number library treats as digits.
"""
from __future__ import annotations

import re

from text_to_num import alpha2digit, text2num

from ivr.events import Expectation

HOMOPHONES = {"oh": "zero", "o": "zero", "to": "two", "too": "two", "for": "four", "fore": "four",
              "won": "one", "ate": "eight", "nought": "zero"}
REPEATS = {"double": 2, "triple": 3}
NUMBER_WORDS = {"zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
                "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen",
                "nineteen", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety",
                "hundred", "thousand", *HOMOPHONES, *REPEATS}
YES = {"yes", "yeah", "yep", "yup", "correct", "right", "sure", "absolutely", "affirmative", "ok", "okay"}
NO = {"no", "nope", "nah", "wrong", "incorrect", "negative"}


def words(text: str) -> list[str]:
    """Lower-case words; punctuation between digits ("4.6", "26-0") splits them."""
    text = re.sub(r"(?<=\d)[-.,/](?=\d)", " ", text.lower())
    return re.findall(r"[a-z0-9']+", text)


def normalise(text: str, expects: Expectation) -> str:
    tokens = words(text)
    if expects.kind == "digits":
        return _digits(tokens) or " ".join(tokens)
    if expects.kind == "yes_no":
        return _yes_no(tokens) or " ".join(tokens)
    if expects.kind == "amount":
        return _amount(tokens) or " ".join(tokens)
    return " ".join(tokens)


def _digits(tokens: list[str]) -> str:
    numeric = [t for t in tokens if t.isdigit() or t in NUMBER_WORDS]
    if not tokens or len(numeric) * 2 < len(tokens):
        return ""  # mostly words: the caller said something else ("let me talk to an agent")
    spoken: list[str] = []
    repeat = 1
    for token in tokens:
        if token in REPEATS:
            repeat = REPEATS[token]
            continue
        token = HOMOPHONES.get(token, token)
        spoken.extend([token] * repeat)
        repeat = 1
    converted = alpha2digit(" ".join(spoken), "en").split()
    # alpha2digit leaves a lone small number word ("4 6 two 8") as it is; text2num takes single words.
    return "".join(_single(t) for t in converted if t.isdigit() or t in NUMBER_WORDS)


def _single(token: str) -> str:
    if token.isdigit():
        return token
    try:
        return str(text2num(token, "en"))
    except ValueError:
        return ""


def _yes_no(tokens: list[str]) -> str:
    if any(t in NO or t == "not" or t.endswith("n't") for t in tokens):
        return "no"
    if any(t in YES for t in tokens):
        return "yes"
    return ""


def _amount(tokens: list[str]) -> str:
    text = alpha2digit(" ".join(tokens), "en")
    match = re.search(r"(\d+)(?:\s*(?:dollars?|bucks?))?(?:\s*and)?(?:\s+(\d{1,2})(?:\s*cents?)?)?\b", text)
    if not match:
        return ""
    dollars, cents = match.group(1), match.group(2) or "0"
    return f"{int(dollars)}.{int(cents):02d}"
