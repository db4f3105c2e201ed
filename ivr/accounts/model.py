"""What the accounts store hands out and the errors it raises: small frozen dataclasses, money in cents."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Optional


@dataclass(frozen=True)
class Card:
    """A card as the store knows it: never the number, only its last four digits and a keyed token."""
    last4: str
    token: str

    def __repr__(self) -> str:  # the token is not secret, but it has no business in logs either
        return f"Card(last4={self.last4!r})"


@dataclass(frozen=True)
class Address:
    house_number: str
    street: str
    city: str
    state: str  # two-letter USPS code
    zip: str  # five digits


@dataclass(frozen=True)
class Payment:
    confirmation: str  # short and speakable, e.g. "KM482913"
    account: str
    amount_cents: int
    card_last4: str
    posted_at: datetime  # UTC, timezone-aware


@dataclass(frozen=True)
class Account:
    number: str
    balance_cents: int  # what the caller owes; negative is a credit
    due_date: Optional[date]
    past_due: bool
    last_payment: Optional[Payment]
    card: Optional[Card]  # the card on file
    address: Address


@dataclass(frozen=True)
class AddressChange:
    account: str
    old: Address
    new: Address
    changed_at: datetime  # UTC, timezone-aware
    call_id: str


class AccountsError(Exception):
    """Anything the accounts store refuses or cannot do."""


class UnknownAccount(AccountsError):
    def __init__(self, number: str):
        super().__init__(f"no account numbered {number!r}")
        self.number = number


class StoreUnavailable(AccountsError):
    """The database cannot be reached or used; the caller should be apologised to and transferred."""


class BadAddress(AccountsError, ValueError):
    pass


class PaymentRefused(AccountsError):
    """A payment the rules do not allow; `reason` is one of the constants below, the message says it in words."""

    NOT_POSITIVE = "not_positive"
    NOTHING_DUE = "nothing_due"
    TOO_LARGE = "too_large"
    KEY_REUSED = "key_reused"

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason
