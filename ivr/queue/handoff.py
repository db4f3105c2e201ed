"""What the agent is told about a caller the bot hands over: one sentence, the answers, the words.

Everything here is shown to a person: account numbers are masked, amounts are dollars, a PIN or
card number never appears (the call sealed them before the dialog saw them; any card-length run
of digits left in free text is masked again here).
"""
from __future__ import annotations

from dataclasses import replace
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
