"""Accounts, the payments ledger and the address audit trail (one store), keyed cards and ZIP lookup."""
from ivr.accounts.cards import CardRefused, CardTokens, check_expiry, install_secret
from ivr.accounts.model import (Account, AccountsError, Address, AddressChange, BadAddress, Card, Payment,
                                PaymentRefused, StoreUnavailable, UnknownAccount)
from ivr.accounts.seed import demo_accounts, seed
from ivr.accounts.store import Store, database_url
from ivr.accounts.zips import Place, place_for_zip


def open_store(settings, create: bool = True) -> Store:
    """The store `settings` point at: IVR_DATABASE_URL, else SQLite in the var folder. `create=False`
    (calls): a store that was never set up is StoreUnavailable, never made anew and empty."""
    return Store(database_url(settings), create=create)


def card_tokens(settings) -> CardTokens:
    """Card tokens under this install's secret (var/keys/card-secret)."""
    return CardTokens.for_install(settings.var_dir)


def seed_demo(settings) -> list:
    """`ivr db seed`: the demo accounts, reset in the configured database. Returns the seeded Accounts."""
    with open_store(settings) as store:
        return seed(store, card_tokens(settings))


__all__ = ["Account", "AccountsError", "Address", "AddressChange", "BadAddress", "Card", "CardRefused",
           "CardTokens", "Payment", "PaymentRefused", "Place", "Store", "StoreUnavailable", "UnknownAccount",
           "card_tokens", "check_expiry", "database_url", "demo_accounts", "install_secret", "open_store",
           "place_for_zip", "seed", "seed_demo"]
