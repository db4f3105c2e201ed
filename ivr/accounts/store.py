"""The accounts store: accounts, the payments ledger and the address audit trail. All of their SQL lives here.

SQLite (the embedded default, `var/accounts.db`) or PostgreSQL, chosen by the URL. The schema is created and
migrated when a store opens. Every operation is one transaction; a payment's ledger row and its balance change
commit together or not at all.
"""
from __future__ import annotations

import os
import secrets
from typing import List, Mapping

from sqlalchemy import (TIMESTAMP, BigInteger, Boolean, CheckConstraint, Column, Date, ForeignKey, Index, MetaData,
                        String, Table, exc, select)
from sqlalchemy.engine import Connection

from ivr.accounts.model import (Account, Address, AddressChange, BadAddress, Card, Payment, PaymentRefused,
                                StoreUnavailable, UnknownAccount)
from ivr.accounts.pins import hash_pin, pin_matches
from ivr import storage
from ivr.storage import Database, DatabaseStore, Schema, from_db, now, primary_key, surrogate_key, to_db

_ADDRESS_LENGTHS = {"house_number": 20, "street": 200, "city": 100, "state": 2, "zip": 10}
_ADDRESS_FIELDS = tuple(_ADDRESS_LENGTHS)
# Letters that stay apart on a phone line (no B/D/E/G/P/T/V/Z rhymes, no I/O/Q/S look-alikes).
_CONFIRMATION_LETTERS = "ACFHJKLMNRWXY"

# The schema, declared once (ivr.storage): a new database is made from these tables; version 1 is them.
_metadata = MetaData()
_accounts = Table(
    "accounts", _metadata,
    primary_key("number", String(32)), Column("pin_hash", String(200), nullable=False),
    Column("balance_cents", BigInteger, nullable=False), Column("due_date", Date),
    Column("past_due", Boolean, nullable=False), Column("card_last4", String(4)), Column("card_token", String(128)),
    *(Column(name, String(length), nullable=False) for name, length in _ADDRESS_LENGTHS.items()))
_payments = Table(
    "payments", _metadata,
    surrogate_key(), Column("confirmation", String(16), nullable=False, unique=True),
    Column("account", String(32), ForeignKey("accounts.number"), nullable=False),
    Column("amount_cents", BigInteger, CheckConstraint("amount_cents > 0"), nullable=False),
    Column("card_last4", String(4), nullable=False), Column("card_token", String(128), nullable=False),
    Column("idempotency_key", String(200), nullable=False, unique=True),
    Column("posted_at", TIMESTAMP, nullable=False),
    Index("payments_by_account", "account", "posted_at"))
_address_changes = Table(
    "address_changes", _metadata,
    surrogate_key(), Column("account", String(32), ForeignKey("accounts.number"), nullable=False),
    *(Column(f"old_{name}", String(length), nullable=False) for name, length in _ADDRESS_LENGTHS.items()),
    *(Column(f"new_{name}", String(length), nullable=False) for name, length in _ADDRESS_LENGTHS.items()),
    Column("changed_at", TIMESTAMP, nullable=False), Column("call_id", String(200), nullable=False),
    Index("address_changes_by_account", "account", "changed_at"))
SCHEMA = Schema(_metadata)
SCHEMA_VERSION = SCHEMA.version
_MIGRATION_LOCK = 4815162342  # PostgreSQL advisory lock held while migrating, so concurrent opens take turns


def database_url(settings, env: Mapping[str, str] = os.environ) -> str:
    """IVR_DATABASE_URL when set (e.g. postgresql+psycopg2://ivr@/ivr?host=/run/postgresql), else SQLite in var/."""
    return storage.database_url(settings, "accounts.db", env)


class Store(DatabaseStore):
    """Accounts, payments and address changes in one database. Safe to share between threads and processes."""

    def __init__(self, url: str, create: bool = True):
        self._db = Database(url, what="accounts", schema=SCHEMA, version_table="schema_version",
                            migration_lock=_MIGRATION_LOCK, unavailable=StoreUnavailable, create=create)
        self._transaction = self._db.transaction

    # --- reading -------------------------------------------------------------------------------------------

    def account(self, number: str) -> Account:
        with self._transaction() as conn:
            row = _account_row(conn, number)
            last = conn.execute(select(_payments).where(_payments.c.account == number)
                                .order_by(_payments.c.posted_at.desc(), _payments.c.id.desc()).limit(1)).first()
        card = Card(row.card_last4, row.card_token) if row.card_token else None
        return Account(number=row.number, balance_cents=row.balance_cents, due_date=row.due_date,
                       past_due=bool(row.past_due), last_payment=_payment(last) if last else None, card=card,
                       address=_address(row, ""))

    def check_pin(self, number: str, pin: str) -> bool:
        with self._transaction() as conn:
            stored = _account_row(conn, number).pin_hash
        return pin_matches(pin, stored)

    def payments(self, number: str) -> List[Payment]:
        """The account's ledger, oldest first."""
        with self._transaction() as conn:
            _account_row(conn, number)
            rows = conn.execute(select(_payments).where(_payments.c.account == number)
                                .order_by(_payments.c.posted_at, _payments.c.id)).all()
        return [_payment(row) for row in rows]

    def address_changes(self, number: str) -> List[AddressChange]:
        """The account's address audit trail, oldest first."""
        with self._transaction() as conn:
            _account_row(conn, number)
            rows = conn.execute(select(_address_changes).where(_address_changes.c.account == number)
                                .order_by(_address_changes.c.changed_at, _address_changes.c.id)).all()
        return [AddressChange(account=row.account, old=_address(row, "old_"), new=_address(row, "new_"),
                              changed_at=from_db(row.changed_at), call_id=row.call_id) for row in rows]

    # --- writing -------------------------------------------------------------------------------------------

    def pay(self, number: str, amount_cents: int, card: Card, idempotency_key: str) -> Payment:
        """Charge `card` and lower the balance, once per `idempotency_key`: a retry returns the first Payment.

        Refuses (PaymentRefused) amounts of zero or less, any payment when nothing is due, and more than twice
        the balance. The ledger row and the balance change are one transaction, taken under the account's lock.
        """
        if isinstance(amount_cents, bool) or not isinstance(amount_cents, int):
            raise TypeError(f"amount_cents must be an int number of cents, not {amount_cents!r}")
        if not idempotency_key:
            raise ValueError("a payment needs an idempotency key (e.g. the call id and the confirming turn)")
        if amount_cents <= 0:
            raise PaymentRefused(PaymentRefused.NOT_POSITIVE,
                                 f"a payment must be more than $0.00, not {_dollars(amount_cents)}")
        for attempt in range(3):
            try:
                return self._pay(number, amount_cents, card, idempotency_key)
            except exc.IntegrityError:
                # The same key committed by a concurrent call on another account, or a confirmation collision:
                # look again, under the lock.
                if attempt == 2:
                    raise StoreUnavailable(f"could not record a payment on {number} in {self._db.where}") from None
        raise AssertionError("unreachable")

    def change_address(self, number: str, new_address: Address, call_id: str) -> AddressChange:
        """Replace the account's address and write the audit row (old, new, when, which call) with it."""
        _check_address(new_address)
        if not call_id:
            raise ValueError("an address change needs the call id for its audit row")
        with self._transaction(write=True) as conn:
            old = _address(_account_row(conn, number, lock=True), "")
            changed_at = now()
            conn.execute(_accounts.update().where(_accounts.c.number == number)
                         .values(**{name: getattr(new_address, name) for name in _ADDRESS_FIELDS}))
            conn.execute(_address_changes.insert().values(
                account=number, changed_at=to_db(changed_at), call_id=call_id,
                **{f"old_{name}": getattr(old, name) for name in _ADDRESS_FIELDS},
                **{f"new_{name}": getattr(new_address, name) for name in _ADDRESS_FIELDS}))
        return AddressChange(account=number, old=old, new=new_address, changed_at=changed_at, call_id=call_id)

    def reset_account(self, account: Account, pin: str) -> None:
        """Make the account exactly `account` (demo data): its ledger holds only `account.last_payment`, if any,
        and its address audit trail is emptied."""
        _check_address(account.address)
        last = account.last_payment
        if last is not None and (account.card is None or last.card_last4 != account.card.last4):
            raise ValueError("a seeded last payment must be made with the card on file")
        values = dict(pin_hash=hash_pin(pin), balance_cents=account.balance_cents, due_date=account.due_date,
                      past_due=account.past_due, card_last4=account.card.last4 if account.card else None,
                      card_token=account.card.token if account.card else None,
                      **{name: getattr(account.address, name) for name in _ADDRESS_FIELDS})
        with self._transaction(write=True) as conn:
            conn.execute(_payments.delete().where(_payments.c.account == account.number))
            conn.execute(_address_changes.delete().where(_address_changes.c.account == account.number))
            exists = conn.execute(select(_accounts.c.number).where(_accounts.c.number == account.number)
                                  .with_for_update()).first()
            if exists:
                conn.execute(_accounts.update().where(_accounts.c.number == account.number).values(**values))
            else:
                conn.execute(_accounts.insert().values(number=account.number, **values))
            if last is not None:
                conn.execute(_payments.insert().values(
                    confirmation=last.confirmation, account=account.number, amount_cents=last.amount_cents,
                    card_last4=last.card_last4, card_token=account.card.token,
                    idempotency_key=f"seed:{account.number}:{last.confirmation}", posted_at=to_db(last.posted_at)))

    # --- inside --------------------------------------------------------------------------------------------

    def _pay(self, number: str, amount_cents: int, card: Card, key: str) -> Payment:
        with self._transaction(write=True) as conn:
            row = _account_row(conn, number, lock=True)
            balance = row.balance_cents
            earlier = conn.execute(select(_payments).where(_payments.c.idempotency_key == key)).first()
            if earlier is not None:
                if (earlier.account, earlier.amount_cents, earlier.card_token) != (number, amount_cents, card.token):
                    raise PaymentRefused(PaymentRefused.KEY_REUSED,
                                         f"idempotency key {key!r} was already used for a different payment")
                return _payment(earlier)
            if balance <= 0:
                raise PaymentRefused(PaymentRefused.NOTHING_DUE,
                                     f"nothing is due on {number} (balance {_dollars(balance)})")
            if amount_cents > 2 * balance:
                raise PaymentRefused(PaymentRefused.TOO_LARGE, f"{_dollars(amount_cents)} is more than twice the "
                                                               f"balance of {_dollars(balance)}")
            payment = Payment(confirmation=_new_confirmation(conn), account=number, amount_cents=amount_cents,
                              card_last4=card.last4, posted_at=now())
            conn.execute(_payments.insert().values(
                confirmation=payment.confirmation, account=number, amount_cents=amount_cents,
                card_last4=card.last4, card_token=card.token, idempotency_key=key,
                posted_at=to_db(payment.posted_at)))
            new_balance = balance - amount_cents  # the row is locked, so this is the balance
            conn.execute(_accounts.update().where(_accounts.c.number == number).values(
                balance_cents=new_balance, past_due=bool(row.past_due) and new_balance > 0))
        return payment


def _account_row(conn: Connection, number: str, lock: bool = False):
    query = select(_accounts).where(_accounts.c.number == number)
    row = conn.execute(query.with_for_update() if lock else query).first()
    if row is None:
        raise UnknownAccount(number)
    return row


def _new_confirmation(conn: Connection) -> str:
    while True:
        code = "".join(secrets.choice(_CONFIRMATION_LETTERS) for _ in range(2)) + \
               "".join(secrets.choice("0123456789") for _ in range(6))
        if conn.execute(select(_payments.c.id).where(_payments.c.confirmation == code)).first() is None:
            return code


def _payment(row) -> Payment:
    return Payment(confirmation=row.confirmation, account=row.account, amount_cents=row.amount_cents,
                   card_last4=row.card_last4, posted_at=from_db(row.posted_at))


def _address(row, prefix: str) -> Address:
    return Address(*(getattr(row, prefix + name) for name in _ADDRESS_FIELDS))


def _check_address(address: Address) -> None:
    for name in _ADDRESS_FIELDS:
        value = getattr(address, name)
        if not isinstance(value, str) or not value.strip():
            raise BadAddress(f"address {name} is missing: {address!r}")
    if len(address.state) != 2 or not address.state.isalpha() or not address.state.isupper():
        raise BadAddress(f"state must be a two-letter code like IL, not {address.state!r}")
    if len(address.zip) != 5 or not address.zip.isdigit():
        raise BadAddress(f"ZIP code must be five digits, not {address.zip!r}")


def _dollars(cents: int) -> str:
    sign = "-" if cents < 0 else ""
    return f"{sign}${abs(cents) // 100:,}.{abs(cents) % 100:02d}"
