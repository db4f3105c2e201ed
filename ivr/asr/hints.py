"""Recognizer hints from what the prompt expects: Whisper's initial prompt, Vosk's grammar."""
from __future__ import annotations

from typing import Optional

from ivr.events import Expectation

DIGIT_WORDS = ["zero", "oh", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
YES_NO_WORDS = ["yes", "yeah", "yep", "no", "nope", "correct", "right", "wrong", "that's", "not"]
# Whisper continues the style of its prompt. The dialog files supply the callers' own words
# (Expectation.phrases); this stands in only where a prompt came with none. A list of the domain's
# words and short phrases, not sentences: with "... No, goodbye." Whisper wrote "No, goodbye, isn't"
# for "No it isn't". Benchmark open questions, intent 95/91/70 % -> 98/94/74 % (wideband/phone/noisy).
DOMAIN = ("Customer line: pay my bill, payment, balance, how much do I owe, change my address, I moved, "
          "agent, representative, operator, a real person, customer service, yes, no, right, wrong, hello, "
          "goodbye.")
UNKNOWN = "[unk]"  # lets Vosk say "something else" instead of forcing a grammar word onto it


def whisper_prompt(expects: Expectation) -> str:
    """Text Whisper reads as what came before: it primes the wording and the way numbers are written."""
    if expects.kind == "digits":
        count = expects.length or 8
        # Every digit in the example (the old one, 4815162342, had no 0, 7 or 9): free decodes of the
        # benchmark's digit strings went from 77/63/29 % exact to 81/69/34 % (wideband/phone/noisy).
        example = " ".join(("9073481562" * 2)[:count])
        return f"Account number: {example}."
    if expects.kind == "yes_no":
        return "Yes. No. Yes, that's right. No, that's wrong."
    if expects.kind == "amount":
        return "I'll pay $50.25. The full balance. $120.75."
    if expects.phrases:
        return vocabulary(expects.phrases)
    return DOMAIN


# Whole caller sentences in the prompt make Whisper repeat them ("I want to pay my bill. I want to
# pay my bill."); a list of the words they use primes the vocabulary without that.
FILLER = {"i", "i'm", "i'd", "me", "my", "a", "an", "the", "to", "is", "it", "what", "what's", "can", "want",
          "would", "like", "need", "please", "do", "you", "of", "on", "for", "and", "or", "with", "some"}


def vocabulary(phrases: tuple[str, ...]) -> str:
    words = dict.fromkeys(w for p in phrases for w in p.lower().split() if w not in FILLER)
    return f"Vocabulary: {', '.join(words)}."


def vosk_grammar(expects: Expectation) -> Optional[list[str]]:
    """Words a grammar-restricted Vosk recognizer may return (in any order and number), or None for
    open vocabulary. One word per entry: Vosk loops over the entries."""
    if expects.kind == "digits":
        return [*DIGIT_WORDS, UNKNOWN]
    if expects.kind == "yes_no":
        return [*YES_NO_WORDS, UNKNOWN]
    return None
