"""The accounts store against real databases (SQLite files and a throwaway PostgreSQL server): the demo accounts
and their PINs, address changes, and cards (checked, tokenised, never stored whole). Payments:
test_accounts_payments.py; opening, migrating and failing databases: test_accounts_database.py."""
from __future__ import annotations

import os
import threading
from datetime import date, datetime, timedelta, timezone

import pytest
import sqlalchemy

from accounts_fixtures import DEMO_NUMBERS, KEYED, TODAY, backend, demo_card, store, tokens, url  # noqa: F401
from ivr.accounts import (Address, BadAddress, CardRefused, CardTokens, Payment, Place, Store, UnknownAccount,
                          install_secret, place_for_zip, seed)
from ivr.accounts.pins import hash_pin, pin_matches


# --- seed, PINs ----------------------------------------------------------------------------------------------

def test_seed_makes_exactly_the_demo_accounts(store, tokens):
    first = store.account("48151623")
    assert (first.balance_cents, first.due_date, first.past_due) == (12075, date(2026, 12, 5), False)
    assert first.card == tokens.card("4242424242424242") and first.card.last4 == "4242"
    assert first.address == Address("12", "Oak Street", "Springfield", "IL", "62704")
    assert first.last_payment == Payment("DEMO4815", "48151623", 9510, "4242",
                                         datetime(2026, 11, 5, 15, 0, tzinfo=timezone.utc))

    second = store.account("27182818")
    assert (second.balance_cents, second.card, second.last_payment, second.past_due) == (0, None, None, False)

    third = store.account("31415926")
    assert (third.balance_cents, third.past_due) == (31040, True)
    assert third.card == tokens.card("5555555555511881") and third.card.last4 == "1881"


def test_seeding_again_resets_the_demo_accounts(store, tokens, url):
    store.pay("48151623", 1000, demo_card(tokens), "call-1:turn-4")
    store.change_address("48151623", Address("5", "Elm Street", "Chicago", "IL", "60601"), "call-1")
    with Store(url) as again:  # a second opening of a migrated database
        seed(again, tokens)
    account = store.account("48151623")
    assert account.balance_cents == 12075
    assert account.address.street == "Oak Street"
    assert [p.confirmation for p in store.payments("48151623")] == ["DEMO4815"]
    assert store.address_changes("48151623") == []


def test_pin_check(store):
    assert store.check_pin("48151623", "2468")
    assert not store.check_pin("48151623", "2469")
    assert not store.check_pin("48151623", "")
    assert store.check_pin("27182818", "1357") and store.check_pin("31415926", "9090")
    assert not store.check_pin("27182818", "2468")  # another account's PIN
    with pytest.raises(UnknownAccount, match="99999999"):
        store.check_pin("99999999", "2468")


def test_pins_are_stored_as_salted_slow_hashes(store, url):
    engine = sqlalchemy.create_engine(url)
    with engine.connect() as conn:
        stored = dict(conn.execute(sqlalchemy.text("SELECT number, pin_hash FROM accounts")).all())
    engine.dispose()
    assert stored["48151623"].startswith("scrypt$16384$8$1$")
    for number, pin in (("48151623", "2468"), ("27182818", "1357"), ("31415926", "9090")):
        assert pin not in stored[number].split("$", 4)[4]
    assert hash_pin("2468") != hash_pin("2468")  # salted
    assert pin_matches("2468", hash_pin("2468")) and not pin_matches("2468", "garbage")


# --- addresses -----------------------------------------------------------------------------------------------

def test_an_address_change_writes_an_audit_row(store):
    moved = Address("77", "Lake Shore Drive", "Chicago", "IL", "60601")
    change = store.change_address("48151623", moved, "call-16")
    assert (change.old, change.new, change.call_id) == (
        Address("12", "Oak Street", "Springfield", "IL", "62704"), moved, "call-16")
    assert abs(change.changed_at - datetime.now(timezone.utc)) < timedelta(minutes=1)
    assert store.account("48151623").address == moved
    back = store.change_address("48151623", Address("12", "Oak Street", "Springfield", "IL", "62704"), "call-17")
    assert store.address_changes("48151623") == [change, back]
    assert back.old == moved


def test_a_malformed_address_is_refused_and_nothing_is_written(store):
    for bad in (Address("12", "Oak Street", "Springfield", "IL", "6270"),
                Address("12", "Oak Street", "Springfield", "Illinois", "62704"),
                Address("", "Oak Street", "Springfield", "IL", "62704")):
        with pytest.raises(BadAddress):
            store.change_address("48151623", bad, "call-18")
    assert store.address_changes("48151623") == []


def test_zip_lookup_is_offline():
    assert place_for_zip("62704") == Place("Springfield", "IL")
    assert place_for_zip("10001") == Place("New York", "NY")
    for unknown in ("00000", "99999", "6270", "627045", "abcde", ""):
        assert place_for_zip(unknown) is None


# --- cards ---------------------------------------------------------------------------------------------------

def test_keyed_cards_are_checked_and_tokenised(tokens, tmp_path):
    card = tokens.read("4242-4242-4242-4242", "1226", TODAY)
    assert card.last4 == "4242" and len(card.token) == 64 and "4242424242424242" not in card.token
    assert card == tokens.read("4242424242424242", "0130", TODAY)  # same card, same token
    assert card != CardTokens.for_install(tmp_path / "other-install").read("4242424242424242", "1226", TODAY)
    assert "4242424242424242" not in repr(card)
    assert tokens.read("4242424242424242", "1126", TODAY)  # good through the end of its month
    for number, expiry, reason in [("4242424242424241", "1226", CardRefused.CHECKSUM),
                                   ("4242 4242 4242 4224", "1226", CardRefused.CHECKSUM),
                                   ("424242424242", "1226", CardRefused.NUMBER),
                                   ("42424242424242424242", "1226", CardRefused.NUMBER),
                                   ("4242x42424242424", "1226", CardRefused.NUMBER),
                                   ("4242424242424242", "1026", CardRefused.EXPIRED),
                                   ("4242424242424242", "1225", CardRefused.EXPIRED),
                                   ("4242424242424242", "1326", CardRefused.EXPIRY),
                                   ("4242424242424242", "0026", CardRefused.EXPIRY),
                                   ("4242424242424242", "126", CardRefused.EXPIRY)]:
        with pytest.raises(CardRefused) as refused:
            tokens.read(number, expiry, TODAY)
        assert refused.value.reason == reason, (number, expiry)


def test_the_install_secret_is_private_stable_and_made_once(tmp_path):
    var = tmp_path / "var"
    secrets_seen = []
    threads = [threading.Thread(target=lambda: secrets_seen.append(install_secret(var))) for _ in range(8)]
    [thread.start() for thread in threads]
    [thread.join() for thread in threads]
    assert len(set(secrets_seen)) == 1 and len(secrets_seen[0]) == 32
    assert (var / "keys" / "card-secret").stat().st_mode & 0o777 == 0o600
    assert sorted(path.name for path in (var / "keys").iterdir()) == ["card-secret"]
    os.chmod(var / "keys" / "card-secret", 0o644)
    with pytest.raises(PermissionError, match="chmod 600"):
        install_secret(var)


def test_full_card_numbers_never_reach_the_database(backend, tokens, tmp_path, request):
    url, pg_name = backend
    card = tokens.read(KEYED, "0128", TODAY)
    with Store(url) as store:
        seed(store, tokens)
        store.pay("48151623", 1234, card, "call-19:turn-5")
        store.pay("31415926", 500, tokens.read(DEMO_NUMBERS[1], "0128", TODAY), "call-19:turn-9")
        if pg_name is None:
            stored = [path.read_bytes() for path in (tmp_path / "db").iterdir()]
        else:
            postgres = request.getfixturevalue("postgres")
            stored = [postgres.dump(pg_name)] + [path.read_bytes() for path in postgres.files()]
    everything = b"".join(stored)
    assert card.token.encode() in everything  # the scan sees what is stored
    for number in (KEYED.replace(" ", ""), *DEMO_NUMBERS):
        assert number.encode() not in everything, f"card number {number} found in the database"
