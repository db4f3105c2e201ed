"""What the accounts' test files share: a fresh accounts database on each backend, the install's card tokens,
the demo accounts seeded, and the demo cards. Import the fixtures into a test file
(`from accounts_fixtures import backend, store, tokens, url`)."""
from __future__ import annotations

from datetime import date

import pytest

from ivr.accounts import CardTokens, Store, seed

TODAY = date(2026, 11, 24)
KEYED = "4111 1111 1111 1111"  # a card a caller keys in; must never reach the database
DEMO_NUMBERS = ("4242424242424242", "5555555555511881")


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request, tmp_path):
    """(url, where): a fresh, empty database on each backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'db' / 'accounts.db'}", None
        return
    server = request.getfixturevalue("postgres")
    name = server.create_database()
    yield server.url(name), name
    server.drop_database(name)


@pytest.fixture
def url(backend):
    return backend[0]


@pytest.fixture
def tokens(tmp_path):
    return CardTokens.for_install(tmp_path / "var")


@pytest.fixture
def store(url, tokens):
    with Store(url) as opened:
        seed(opened, tokens)
        yield opened


def demo_card(tokens, last4="4242"):
    return tokens.card(next(number for number in DEMO_NUMBERS if number.endswith(last4)))
