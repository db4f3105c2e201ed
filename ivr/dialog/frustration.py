"""How upset the caller is, turn by turn: 0 calm .. 1 furious.

Words first (VADER's sentiment lexicon, a profanity list, and the complaint phrases the dialog
files name), then how the call is going: the same thing said again, "no" after "no", turns the
bot did not understand. Older turns fade, so one sharp word does not mark a whole call.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from importlib.resources import files

from rapidfuzz import fuzz

FADE = 0.6  # what is left of the previous score after a turn
SENTIMENT_WEIGHT = 0.6  # a fully negative sentence (VADER compound -1)
PROFANITY = 0.4
COMPLAINT = 0.35
REPEATED = 0.25  # the caller said the same thing again
DENIED_AGAIN = 0.2
NOT_UNDERSTOOD = 0.1
SAME_WORDS = 85  # rapidfuzz ratio at which two turns count as a repetition
FAILED_INTENTS = {"nlu_fallback", "out_of_scope", "no_input"}


@dataclass(frozen=True)
class FrustrationSettings:
    threshold: float = 0.7  # at or above, the bot acknowledges it and transfers
    phrases: tuple[str, ...] = ()  # complaints, lower case: "ridiculous", "already told you"


@dataclass
class FrustrationMeter:
    settings: FrustrationSettings = FrustrationSettings()
    score: float = 0.0
    _last_text: str = ""
    _last_intent: str = ""
    _last_words: float = 0.0
    history: list[float] = field(default_factory=list)

    def hear(self, text: str, intent: str | None) -> float:
        """Take one caller turn (what was heard and its intent); returns the new score."""
        self._last_words = self._words(text)
        signal = self._last_words + self._course(text, intent or "")
        self.score = round(min(1.0, FADE * self.score + signal), 3)
        self.history.append(self.score)
        if text and not text.startswith("/"):
            self._last_text = text.lower()
        self._last_intent = intent or ""
        return self.score

    @property
    def upset(self) -> bool:
        return self.score >= self.settings.threshold

    @property
    def upset_now(self) -> bool:
        """The latest turn's own words were upset (a complaint, profanity, an angry sentence), whatever
        the score: "this is ridiculous, I want a real person" is an upset request for a person."""
        return self._last_words >= COMPLAINT

    def _words(self, text: str) -> float:
        lowered = text.lower()
        if not lowered or lowered.startswith("/"):
            return 0.0
        signal = 0.0
        if len(lowered.split()) >= 3:  # a bare "no" is an answer, not a mood
            signal += SENTIMENT_WEIGHT * max(0.0, -_sentiment().polarity_scores(text)["compound"])
        if _profane(lowered):
            signal += PROFANITY
        if any(phrase in lowered for phrase in self.settings.phrases):
            signal += COMPLAINT
        return signal

    def _course(self, text: str, intent: str) -> float:
        signal = 0.0
        lowered = text.lower()
        if (len(lowered.split()) >= 2 and self._last_text
                and fuzz.ratio(lowered, self._last_text) >= SAME_WORDS):
            signal += REPEATED
        if intent == "deny" and self._last_intent == "deny":
            signal += DENIED_AGAIN
        if intent in FAILED_INTENTS or text in ("/no_input", "/nlu_fallback"):
            signal += NOT_UNDERSTOOD
        return signal


@lru_cache(maxsize=1)
def _sentiment():
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer
    return SentimentIntensityAnalyzer()


def _profane(lowered: str) -> bool:
    """A word (or a phrase of up to four) on better_profanity's list, or a word written censored ("sh*t", as
    Whisper sometimes does) that fits one. Its own matcher tries every leetspeak spelling of every listed word
    against each word said: 7-30 ms of CPU per sentence, on the event loop that paces every caller's audio. A
    recognizer writes words as spelt (or starred), so the list itself is enough."""
    words = re.findall(r"[a-z0-9'*]+", lowered)
    said = {" ".join(words[at:at + n]) for n in range(1, 5) for at in range(len(words) - n + 1)}
    listed = _profane_words()
    return not said.isdisjoint(listed) or any(_starred_fits(word, listed) for word in words if "*" in word)


def _starred_fits(word: str, listed: frozenset[str]) -> bool:
    if word.strip("*") == "":
        return False  # "***" alone says nothing
    shape = re.compile(re.escape(word).replace(r"\*", "[a-z]"))
    return any(len(entry) == len(word) and shape.fullmatch(entry) for entry in listed)


def warm_up() -> None:
    """The word lists loaded before the first caller (off the event loop): VADER's lexicon and the profanity list."""
    _sentiment()
    _profane_words()


@lru_cache(maxsize=1)
def _profane_words() -> frozenset[str]:
    import better_profanity  # only its list (a file of the package's own, present since 0.7)

    listed = files(better_profanity).joinpath("profanity_wordlist.txt").read_text(encoding="utf-8")
    return frozenset(" ".join(line.lower().split()) for line in listed.splitlines() if line.strip())
