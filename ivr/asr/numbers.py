"""What a recognizer wrote, normalised for what the prompt expects.

Whisper writes digits as "26-0-8-1-5-9", "613-1860", "4.6 to 8" or words; callers say "oh" and
"double five". Number words go through text2num (alpha2digit / text2num); we add only the
spoken-digit homophones and "double/triple", which no number library treats as digits.
"""
from __future__ import annotations

import re
from functools import lru_cache
from typing import Optional

from text_to_num import alpha2digit, text2num

from ivr.events import Expectation

# Only where a digit is expected: "two to eight" is 2 2 8, never "two until eight".
HOMOPHONES = {"oh": "zero", "o": "zero", "nought": "zero", "to": "two", "too": "two", "for": "four",
              "fore": "four", "won": "one", "ate": "eight"}
REPEATS = {"double": 2, "triple": 3}
SCALES = {"thousand": 1_000, "million": 1_000_000, "billion": 1_000_000_000}
FILLERS = {"and", "a"}  # "one hundred and five", "a hundred"
YES = {"yes", "yeah", "yep", "yup", "correct", "right", "sure", "absolutely", "affirmative", "ok", "okay"}
NO = {"no", "nope", "nah", "wrong", "incorrect", "negative"}
# Words that add nothing to a bare yes or no ("yes please, that's right", "no, that's not it").
POLITE = {"please", "thanks", "thank", "you", "that's", "thats", "that", "it's", "its", "it", "is", "isn't", "not",
          "go", "ahead", "fine", "good", "sir", "ma'am", "of", "course", "uh", "um", "oh", "well"}
IN_DIGIT_RUNS = {"oh", "o", "nought", "double", "triple"}  # digits only next to other numbers


def normalise(text: str, expects: Expectation) -> str:
    """Digits as a digit string, yes/no as "yes"/"no", amounts as "50.25"; otherwise the text as heard."""
    if expects.kind == "digits":
        return without_runaway(_digits(words(text)), expects.length) or text.strip()
    if expects.kind == "yes_no":  # more than a yes or no ("no, it's six two seven oh one") is heard whole
        return bare_yes_no(text) or (with_digits(text) if any(_numeric_word(w) for w in words(text)) else text.strip())
    if expects.kind == "amount":
        return _amount(text) or text.strip()
    return text.strip()


def without_runaway(digits: str, length: Optional[int]) -> str:
    """The first `length` digits when Whisper ran on by starting the string over ("9 4 1 4 9 4 1"
    for 9414): a caller who says more digits than asked says new ones, not the same again."""
    extra = len(digits) - (length or len(digits))
    if extra > 0 and digits[length:] == (digits * (extra // len(digits) + 2))[:extra]:
        return digits[:length]
    return digits


def words(text: str) -> list[str]:
    """Lower-case words; punctuation between digits ("4.6", "26-0", "613-1860") splits them."""
    text = re.sub(r"(?<=\d)[-.,/](?=\d)", " ", text.lower())
    return re.findall(r"[a-z0-9']+", text)


@lru_cache(maxsize=512)
def _number_word(token: str) -> bool:
    try:
        text2num(token, "en")
    except ValueError:
        return token in {"hundred", "thousand", "million"}
    return True


def _numeric_word(token: str) -> bool:
    return token.isdigit() or _number_word(token)


def numeric(token: str) -> bool:
    return _numeric(token)


def _numeric(token: str) -> bool:
    return token.isdigit() or token in HOMOPHONES or token in REPEATS or _number_word(token)


def spoken_digits(tokens: list[str]) -> str:
    """Number words and digits as one digit string ("three fourteen" → "314"), or "" for mostly words."""
    return _digits(tokens)


def _digits(tokens: list[str]) -> str:
    numeric = [t for t in tokens if _numeric(t)]
    if not numeric or len(numeric) * 2 < len(tokens):
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
    # alpha2digit joins "forty eight" into 48 but leaves a lone word ("4 6 two 8"); text2num takes those.
    return "".join(_as_digits(t) for t in alpha2digit(" ".join(spoken), "en").split())


def _as_digits(token: str) -> str:
    if token.isdigit():
        return token
    try:
        return str(text2num(token, "en"))
    except ValueError:
        return ""


def yes_or_no(text: str) -> str:
    """"yes", "no", or "" when the answer is neither."""
    return _yes_no(words(text))


def bare_yes_no(text: str) -> str:
    """"yes" or "no" when that is all the caller said; "" when they said more ("no, it's 62701",
    "no, that's all", "agent"), which the dialog must hear whole."""
    tokens = words(text)
    answer = _yes_no(tokens)
    return answer if answer and all(t in YES or t in NO or t in POLITE for t in tokens) else ""


def with_digits(text: str) -> str:
    """Number words in a sentence as digits, each run of them as one number: "no, it's six two seven
    oh one" -> "no it's 62701", "the house number is three fifty two" -> "... 352". Lone homophones
    ("to", "for") stay words: only a run with a real number in it is a number."""
    out: list[str] = []
    run: list[str] = []
    for token in [*words(text), ""]:
        if token and (token.isdigit() or _number_word(token) or token in IN_DIGIT_RUNS):
            run.append(token)
            continue
        if any(t.isdigit() or _number_word(t) for t in run):
            out.append(_digits(run) or " ".join(run))
        else:
            out.extend(run)
        run = []
        if token:
            out.append(token)
    return " ".join(out)


def _yes_no(tokens: list[str]) -> str:
    for i, token in enumerate(tokens):
        if token in NO:
            return "no"
        if token in {"not", "isn't", "that's"} and i + 1 < len(tokens) and tokens[i + 1] in {"right", "correct"}:
            return "no" if token != "that's" else "yes"
        if token in YES:
            return "yes"
    return ""


def _amount(text: str) -> str:
    text = text.lower().replace("$", " ")
    text = re.sub(r"(?<=\d),(?=\d{3}\b)", "", text)  # 1,200.50
    text = re.sub(r"(\d+(?:\.\d+)?)\s*(thousand|million|billion)\b",  # Whisper's "$1 billion"
                  lambda m: f"{float(m.group(1)) * SCALES[m.group(2)]:.2f}", text)
    text = alpha2digit(re.sub(r"[^a-z0-9.' ]", " ", text), "en")
    match = re.search(r"(\d+)(?:\.(\d{1,2})\b)?(?:\s*(?:dollars?|bucks?))?(?:\s*and)?"
                      r"(?:\s+(\d{1,2})(?:\s*cents?)?\b)?", text)
    if not match:
        return ""
    dollars, cents = match.group(1), match.group(2) or match.group(3) or "0"
    if len(cents) == 1 and match.group(2):
        cents += "0"  # $50.5 is fifty dollars fifty
    return f"{int(dollars)}.{int(cents):02d}"


_AMOUNT_DONE = re.compile(r"\b(dollars?|bucks|cents?)\s*$|\d\.\d\d\s*$")


def complete_answer(text: str, expects: Expectation) -> bool:
    """Whether what the caller said so far already answers the question in full: all the digits asked for,
    a bare yes or no, an amount that ends in dollars or cents. Then a short pause ends the turn. A digit
    string paused half-way ("4815 ...") or "fifty" (and twenty?) is not complete: the caller goes on."""
    if expects.kind == "digits" and expects.length:
        return len(normalise(text, expects)) == expects.length and normalise(text, expects).isdigit()
    if expects.kind == "yes_no":
        return bool(bare_yes_no(text))
    if expects.kind == "amount":
        return bool(re.search(r"\d", normalise(text, expects))) and bool(_AMOUNT_DONE.search(text.lower().strip(" .!?")))
    if expects.kind == "free":
        return sentence_ended(text)
    return False


# A sentence that stops on one of these has more to come: "I want to ...", "I need help with my ...".
CONTINUING = {"a", "an", "the", "my", "your", "our", "to", "and", "or", "but", "so", "because", "for", "of", "with",
              "about", "at", "in", "on", "from", "into", "is", "are", "was", "i", "i'm", "it's", "um", "uh", "er",
              "like", "if", "when", "than", "just"}


def sentence_ended(text: str) -> bool:
    """Free speech that reads as a finished sentence: Whisper closes one with . ? or ! and writes a caller who
    trails off with "..." or a comma; a last word that leads on ("to", "my", "and") is never an end. Vosk writes
    no punctuation, so with Vosk free speech always keeps its full wait."""
    text = text.strip()
    if not text or text[-1] not in ".?!" or text.endswith(".."):
        return False
    last = words(text)[-1:] or [""]
    return last[0] not in CONTINUING
