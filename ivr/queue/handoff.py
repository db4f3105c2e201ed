"""What the agent is told about a caller the bot hands over: one sentence, the answers, the words.

Everything here is shown to a person: account numbers are masked, amounts are dollars, a PIN or
card number never appears (the call sealed them before the dialog saw them; any card-length run
of digits left in free text is masked again here).
"""
from __future__ import annotations

import re
from dataclasses import replace
from functools import lru_cache
from typing import Any, Iterable, Optional

from ivr.events import Escalation, TranscriptLine, Turn
from ivr.masking import HIDDEN, is_sealed, mask_card_numbers

REASONS = {
    "caller_request": "asked for a person",
    "out_of_scope": "needs something the bot does not do",
    "dont_know": "did not have what the bot asked for",
    "no_input": "went silent after two reprompts",
    "no_match": "was not understood after two reprompts",
    "auth_failed": "failed identification three times",
    "frustration": "is upset",
    "payment_failed": "the payment was refused",
    "payment_declined": "the card was declined",
    "store_unavailable": "our accounts system was down",
    "address_failed": "the new address could not be saved",
    "dialog_failure": "the bot failed on our side",
}
TASKS = {"bill_pay": "pay a bill", "balance": "hear their balance", "address_change": "change their address"}


def mask_account(number: Optional[str]) -> Optional[str]:
    """48151623 -> 48…623: enough to find the account, not enough to use it."""
    if not number:
        return None
    digits = "".join(c for c in str(number) if c.isdigit())
    return f"{digits[:2]}…{digits[-3:]}" if len(digits) >= 6 else "…"


def dollars(cents: Any) -> Optional[str]:
    try:
        value = int(cents)
    except (TypeError, ValueError):
        return None
    return f"${value // 100:,}.{value % 100:02d}"


def shown_account(slots: dict[str, Any]) -> Optional[str]:
    """The caller's account as an agent sees it (masked), once the slot holds an account number."""
    return mask_account(slots.get("account_number")) if _account_digits(slots) else None


def shown_slots(slots: dict[str, Any], account: Optional[str]) -> dict[str, str]:
    """The dialog's answers worth an agent's eye, as they would say them; `account` is shown_account(slots)."""
    place = ", ".join(p for p in (slots.get("city"), slots.get("state")) if p)
    street = " ".join(p for p in (slots.get("house_number"), slots.get("street")) if p)
    shown = {
        "account": account,
        "identified": ("yes" if slots.get("authenticated") else "no") if account else None,
        "amount": dollars(slots.get("amount_cents")) if slots.get("amount_cents") not in (None, "") else None,
        "card": f"ending {slots['card_last4']}" if slots.get("card_last4") else
                (f"on file, ending {slots['card_on_file']}" if slots.get("card_on_file") else None),
        "new ZIP": slots.get("zip_code") if str(slots.get("zip_code") or "").isdigit() else None,
        "new city": place or None,
        "new street": street or None,
        "failed identification tries": str(int(slots["auth_tries"])) if slots.get("auth_tries") else None,
    }
    return {key: mask_card_numbers(str(value)) for key, value in shown.items() if value}


def summary(reason: str, task: Optional[str], slots: dict[str, Any], frustration: float,
            account: Optional[str]) -> str:
    """"Authenticated caller wants to pay $50.00 on 48…623; the payment was refused."

    `account` is shown_account(slots)."""
    who = "Authenticated caller" if slots.get("authenticated") else (
        "Caller (not identified)" if account else "Caller")
    if task == "bill_pay":
        amount = dollars(slots.get("amount_cents")) if slots.get("amount_cents") not in (None, "") else None
        what = f"wants to pay {amount or 'a bill'}" + (f" on {account}" if account else "")
    elif task in TASKS:
        what = f"wants to {TASKS[task]}" + (f" on {account}" if account else "")
    else:
        what = "has not said what they need"
    why = REASONS.get(reason, reason.replace("_", " "))
    mood = f"; frustration {frustration:.2f}" if frustration >= 0.3 and reason != "frustration" else ""
    if reason == "frustration":
        why = f"is upset (frustration {frustration:.2f})"
    return f"{who} {what}; {why}{mood}."


# Words a caller uses for wanting a human being, in what the recognizer writes down.
_PERSON = re.compile(r"\b(agent|person|human|representative|operator|somebody|someone|real people|manager|"
                     r"supervisor)s?\b", re.IGNORECASE)
_COMPLAINT_AT = -0.3  # VADER compound score at or below which a caller's sentence is a complaint
_QUOTED_WORDS = 10  # a quote longer than this is clipped: a warning is read at a glance
# Why the bot handed over, when it was the bot's or the business's failure the caller lived through.
_FAILURES = ("no_match", "auth_failed", "payment_failed", "payment_declined", "store_unavailable", "address_failed",
             "dialog_failure")


def upset_warning(escalation: Escalation, upset_at: float) -> Optional[str]:
    """"Caller is upset: said "you charged me twice", asked for a person three times": the first line an agent
    reads about an upset caller, from what the call knows (their complaint in their words, how often they asked
    for a person, how often they failed or went silent, what failed). None for a caller below `upset_at` (the
    queue's `CareRules.upset_at`: the dialog's frustration threshold)."""
    if escalation.frustration < upset_at:
        return None
    said = [line.text for line in escalation.transcript if line.speaker == "caller"]
    causes = [cause for cause in (_complaint(said), _times("asked for a person", _asks_for_person(said)),
                                  _times("failed identification", _failed_identification(escalation.slots)),
                                  _times("went silent", sum(text == "(silence)" for text in said), least=2),
                                  _failure(escalation.reason)) if cause]
    return "Caller is upset" + (f": {', '.join(causes)}" if causes else ".")


def _complaint(said: list[str]) -> Optional[str]:
    """The caller's most negative sentence, quoted (clipped), when one is negative enough to be a complaint."""
    scored = [(_sentiment().polarity_scores(text)["compound"], text) for text in said
              if len(text.split()) >= 3 and not text.startswith("(")]
    if not scored or min(scored)[0] > _COMPLAINT_AT:
        return None
    words = min(scored)[1].split()
    quote = " ".join(words[:_QUOTED_WORDS]) + ("…" if len(words) > _QUOTED_WORDS else "")
    return f'said "{quote}"'


def _asks_for_person(said: list[str]) -> int:
    return sum(bool(_PERSON.search(text)) for text in said)


def _failed_identification(slots: dict[str, Any]) -> int:
    try:
        return int(slots.get("failed identification tries") or 0)
    except ValueError:
        return 0


def _failure(reason: str) -> Optional[str]:
    return REASONS.get(reason) if reason in _FAILURES else None


def _times(what: str, count: int, least: int = 1) -> Optional[str]:
    if count < least:
        return None
    return f"{what} {({1: 'once', 2: 'twice'}).get(count, f'{_NUMBERS.get(count, count)} times')}"


_NUMBERS = {3: "three", 4: "four", 5: "five", 6: "six", 7: "seven", 8: "eight", 9: "nine"}


@lru_cache(maxsize=1)
def _sentiment():
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer
    return SentimentIntensityAnalyzer()


def transcript(greeting: Iterable[str], turns: Iterable[Turn]) -> tuple[TranscriptLine, ...]:
    lines = [TranscriptLine("bot", text) for text in greeting]
    for turn in turns:
        if turn.kind == "no_input":
            lines.append(TranscriptLine("caller", "(silence)"))
        elif turn.heard:
            heard = turn.heard if turn.heard == HIDDEN or not turn.kind == "dtmf" else f"(keyed) {turn.heard}"
            lines.append(TranscriptLine("caller", mask_card_numbers(heard)))
        lines.extend(TranscriptLine("bot", text) for text in turn.bot)
    return tuple(lines)


def handoff(escalation: Escalation, *, call_id: str, channel: str, caller_number: Optional[str],
            task: Optional[str], slots: dict[str, Any], greeting: Iterable[str], turns: Iterable[Turn],
            frustration: float) -> Escalation:
    """The dialog's bare Escalation(reason), filled in with everything the agent needs."""
    slots = {k: v for k, v in slots.items() if not (isinstance(v, str) and is_sealed(v))}
    account = shown_account(slots)  # masked once: the summary, the answers and the entry show the same
    return replace(
        escalation, call_id=call_id, channel=channel, caller_number=caller_number, task=task,
        slots=shown_slots(slots, account), transcript=transcript(greeting, turns), frustration=round(frustration, 3),
        account=account, authenticated=bool(slots.get("authenticated")),
        summary=escalation.summary or summary(escalation.reason, task, slots, frustration, account))


def _account_digits(slots: dict[str, Any]) -> bool:
    """The account slot holds what the caller said until validated: only digits count."""
    value = str(slots.get("account_number") or "")
    return value.isdigit() and len(value) >= 6
