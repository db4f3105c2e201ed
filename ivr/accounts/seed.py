"""The demo accounts, reset to exactly these values on every run (`ivr db seed`)."""
from __future__ import annotations

from datetime import date, datetime, timezone
from typing import List, Tuple

from ivr.accounts.cards import CardTokens
from ivr.accounts.model import Account, Address, Payment
from ivr.accounts.store import Store

# Made-up card numbers (they pass the Luhn check); only their tokens and last four reach the database.
_DEMO_CARDS = {"4242": "4242424242424242", "1881": "5555555555511881"}


def demo_accounts(tokens: CardTokens) -> List[Tuple[Account, str]]:
    """(account, PIN) for each demo account."""
    visa = tokens.card(_DEMO_CARDS["4242"])
    mastercard = tokens.card(_DEMO_CARDS["1881"])
    return [
        (Account(number="48151623", balance_cents=12075, due_date=date(2026, 12, 5), past_due=False,
                 last_payment=Payment(confirmation="DEMO4815", account="48151623", amount_cents=9510,
                                      card_last4="4242",
                                      posted_at=datetime(2026, 11, 5, 15, 0, tzinfo=timezone.utc)),
                 card=visa, address=Address("12", "Oak Street", "Springfield", "IL", "62704")),
         "2468"),
        (Account(number="27182818", balance_cents=0, due_date=None, past_due=False, last_payment=None, card=None,
                 address=Address("7", "Maple Avenue", "Madison", "WI", "53703")),
         "1357"),
        (Account(number="31415926", balance_cents=31040, due_date=date(2026, 10, 15), past_due=True,
                 last_payment=None, card=mastercard, address=Address("314", "Pine Road", "Austin", "TX", "78701")),
         "9090"),
    ]


def seed(store: Store, tokens: CardTokens) -> List[Account]:
    """Reset the demo accounts (balances, cards, addresses, PINs; their ledgers and address audits emptied
    but for the seeded last payment). Safe to run again; other accounts are left alone."""
    accounts = demo_accounts(tokens)
    for account, pin in accounts:
        store.reset_account(account, pin)
    return [account for account, _ in accounts]
