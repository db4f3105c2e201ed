"""The accounts store against real databases: SQLite files and a throwaway PostgreSQL server."""
from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest
import sqlalchemy

from ivr.accounts import (Address, BadAddress, CardRefused, CardTokens, Payment, PaymentRefused, Place, Store,
                          StoreUnavailable, UnknownAccount, database_url, install_secret, place_for_zip, seed)
from ivr.accounts.pins import hash_pin, pin_matches
from ivr.config import Settings

ROOT = Path(__file__).resolve().parent.parent
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


# --- payments ------------------------------------------------------------------------------------------------

def test_payment_lowers_the_balance_and_writes_the_ledger(store, tokens):
    card = tokens.read(KEYED, "0128", TODAY)
    payment = store.pay("48151623", 5025, card, "call-7:turn-5")
    assert payment.amount_cents == 5025 and payment.card_last4 == "1111" and payment.account == "48151623"
    assert len(payment.confirmation) == 8 and payment.confirmation[:2].isalpha() and payment.confirmation[2:].isdigit()
    assert abs(payment.posted_at - datetime.now(timezone.utc)) < timedelta(minutes=1)
    account = store.account("48151623")
    assert account.balance_cents == 12075 - 5025
    assert account.last_payment == payment
    assert store.payments("48151623")[-1] == payment and len(store.payments("48151623")) == 2


def test_paying_off_a_past_due_balance_clears_past_due(store, tokens):
    store.pay("31415926", 10000, demo_card(tokens, "1881"), "call-8:turn-3")
    assert store.account("31415926").past_due
    store.pay("31415926", 21040, demo_card(tokens, "1881"), "call-8:turn-6")
    assert (store.account("31415926").balance_cents, store.account("31415926").past_due) == (0, False)


def test_a_retried_payment_returns_the_first_and_charges_once(store, tokens):
    card = demo_card(tokens)
    first = store.pay("48151623", 2000, card, "call-9:turn-5")
    again = store.pay("48151623", 2000, card, "call-9:turn-5")
    assert again == first
    assert store.account("48151623").balance_cents == 12075 - 2000
    assert [p.confirmation for p in store.payments("48151623")] == ["DEMO4815", first.confirmation]
    with pytest.raises(PaymentRefused) as refused:
        store.pay("48151623", 3000, card, "call-9:turn-5")
    assert refused.value.reason == PaymentRefused.KEY_REUSED


@pytest.mark.parametrize("number, amount, reason", [
    ("48151623", 0, PaymentRefused.NOT_POSITIVE),
    ("48151623", -500, PaymentRefused.NOT_POSITIVE),
    ("48151623", 2 * 12075 + 1, PaymentRefused.TOO_LARGE),
    ("27182818", 1, PaymentRefused.NOTHING_DUE),
])
def test_refused_payments_change_nothing(store, tokens, number, amount, reason):
    with pytest.raises(PaymentRefused) as refused:
        store.pay(number, amount, demo_card(tokens), "call-10:turn-2")
    assert refused.value.reason == reason and str(refused.value)
    assert store.account(number).balance_cents == {"48151623": 12075, "27182818": 0}[number]
    assert len(store.payments(number)) == {"48151623": 1, "27182818": 0}[number]


def test_up_to_twice_the_balance_is_taken_as_a_credit(store, tokens):
    store.pay("48151623", 2 * 12075, demo_card(tokens), "call-11:turn-2")
    assert store.account("48151623").balance_cents == -12075
    with pytest.raises(PaymentRefused) as refused:
        store.pay("48151623", 100, demo_card(tokens), "call-11:turn-4")
    assert refused.value.reason == PaymentRefused.NOTHING_DUE


def test_amounts_are_whole_cents(store, tokens):
    with pytest.raises(TypeError):
        store.pay("48151623", 12.5, demo_card(tokens), "call-12:turn-1")


def test_unknown_accounts_are_refused_by_name(store, tokens):
    for operation in (lambda: store.account("00000000"), lambda: store.payments("00000000"),
                      lambda: store.address_changes("00000000"),
                      lambda: store.pay("00000000", 100, demo_card(tokens), "call-13:turn-1"),
                      lambda: store.change_address("00000000", Address("1", "A St", "Austin", "TX", "78701"), "c")):
        with pytest.raises(UnknownAccount, match="no account numbered '00000000'"):
            operation()


def test_concurrent_payments_on_one_account_both_count(url, tokens):
    with Store(url) as store:
        seed(store, tokens)
    card = demo_card(tokens)
    stores = [Store(url), Store(url)]  # two engines, as two processes would have
    amounts = [[100, 250, 75, 310, 5], [999, 1, 420, 66, 1234]]
    results, errors = [], []
    start = threading.Barrier(2)

    def pay(worker):
        try:
            start.wait()
            for turn, amount in enumerate(amounts[worker]):
                results.append(stores[worker].pay("48151623", amount, card, f"call-{worker}:turn-{turn}"))
        except Exception as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=pay, args=(worker,)) for worker in (0, 1)]
    [thread.start() for thread in threads]
    [thread.join(60) for thread in threads]
    assert not errors
    ledger = stores[0].payments("48151623")
    assert len(ledger) == 1 + 10 and len({p.confirmation for p in ledger}) == 11
    assert stores[1].account("48151623").balance_cents == 12075 - sum(map(sum, amounts))
    for store in stores:
        store.close()


def test_the_same_payment_sent_twice_at_once_is_charged_once(url, tokens):
    with Store(url) as store:
        seed(store, tokens)
    stores = [Store(url), Store(url)]
    start = threading.Barrier(2)
    results = [None, None]

    def pay(worker):
        start.wait()
        results[worker] = stores[worker].pay("48151623", 4000, demo_card(tokens), "call-14:turn-5")

    threads = [threading.Thread(target=pay, args=(worker,)) for worker in (0, 1)]
    [thread.start() for thread in threads]
    [thread.join(60) for thread in threads]
    assert results[0] is not None and results[0] == results[1]
    assert stores[0].account("48151623").balance_cents == 12075 - 4000
    assert len(stores[0].payments("48151623")) == 2
    for store in stores:
        store.close()


# A payer that stops dead at a chosen point inside `Store.pay` (watching the real statements go by) until the
# test SIGKILLs it: between the ledger insert and the balance update, just before COMMIT, or just after it.
PAYER = r"""
import sys, time
from sqlalchemy import event
from sqlalchemy.engine import Engine
from ivr.accounts import Card, Store
url, stage, key, token = sys.argv[1:]
inserted = []

def stop_here():
    print("stopped", flush=True)
    time.sleep(120)

@event.listens_for(Engine, "before_cursor_execute")
def watch(conn, cursor, statement, parameters, context, executemany):
    if inserted and stage == "between_writes":
        stop_here()
    if statement.lstrip().upper().startswith("INSERT INTO PAYMENTS"):
        inserted.append(statement)

@event.listens_for(Engine, "commit")
def committing(conn):
    if inserted and stage == "before_commit":
        stop_here()

store = Store(url)
store.pay("48151623", 2500, Card("4242", token), key)
if stage == "after_commit":
    stop_here()
"""


def run_payer_until_killed(url, stage, key, token):
    payer = subprocess.Popen([sys.executable, "-c", PAYER, url, stage, key, token], cwd=ROOT,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             env={**os.environ, "PYTHONPATH": str(ROOT)})
    watchdog = threading.Timer(60, payer.kill)
    watchdog.start()
    try:
        line = payer.stdout.readline()
        assert line == "stopped\n", f"the payer did not reach {stage}: {payer.stderr.read()}"
        os.kill(payer.pid, signal.SIGKILL)
        assert payer.wait(30) == -signal.SIGKILL
    finally:
        watchdog.cancel()
        payer.kill()


@pytest.mark.parametrize("stage, recorded", [("between_writes", 0), ("before_commit", 0), ("after_commit", 1)])
def test_a_payer_killed_mid_payment_leaves_no_payment_or_exactly_one(store, tokens, url, stage, recorded):
    card = demo_card(tokens)
    run_payer_until_killed(url, stage, "call-15:turn-5", card.token)
    ledger = [p for p in store.payments("48151623") if p.confirmation != "DEMO4815"]
    assert len(ledger) == recorded
    assert store.account("48151623").balance_cents == 12075 - 2500 * recorded
    # The caller's retry (same key) then charges exactly once in all cases.
    retried = store.pay("48151623", 2500, card, "call-15:turn-5")
    assert [p for p in store.payments("48151623") if p.confirmation != "DEMO4815"] == [retried]
    assert store.account("48151623").balance_cents == 12075 - 2500


LOOPING_PAYER = r"""
import sys
from ivr.accounts import Card, Store
url, token = sys.argv[1:]
store = Store(url)
print("open", flush=True)
for turn in range(100000):
    store.pay("48151623", 1, Card("4242", token), f"loop:{turn}")
"""


def test_payers_killed_at_random_moments_leave_the_balance_matching_the_ledger(store, tokens, url):
    chance = random.Random(20261124)
    for _ in range(3):
        payer = subprocess.Popen([sys.executable, "-c", LOOPING_PAYER, url, demo_card(tokens).token], cwd=ROOT,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                 env={**os.environ, "PYTHONPATH": str(ROOT)})
        assert payer.stdout.readline() == "open\n", payer.stderr.read()
        time.sleep(chance.uniform(0.05, 0.4))
        payer.send_signal(signal.SIGKILL)
        assert payer.wait(30) == -signal.SIGKILL
    paid = [p.amount_cents for p in store.payments("48151623") if p.confirmation != "DEMO4815"]
    assert paid, "the payers were killed before paying anything: the test proved nothing"
    assert store.account("48151623").balance_cents == 12075 - sum(paid)


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


# --- opening, migrating, failing -----------------------------------------------------------------------------

def opened_at_once(url: str, count: int = 6) -> tuple[list, list]:
    """`count` threads open the store at the same moment: the stores opened and the errors raised."""
    opened, errors = [], []
    start = threading.Barrier(count)

    def open_store():
        try:
            start.wait()
            opened.append(Store(url))
        except Exception as error:  # noqa: BLE001 - reported by the caller
            errors.append(error)

    threads = [threading.Thread(target=open_store) for _ in range(count)]
    [thread.start() for thread in threads]
    [thread.join(60) for thread in threads]
    return opened, errors


def test_opening_a_new_database_concurrently_migrates_it_once(url):
    opened, errors = opened_at_once(url)
    assert not errors and len(opened) == 6
    assert {store.schema_version() for store in opened} == {1}
    with pytest.raises(UnknownAccount):
        opened[0].account("48151623")
    for store in opened:
        store.close()


def test_new_sqlite_files_opened_six_at_once_are_never_found_locked(tmp_path):
    """Switching a new file to WAL needs it to itself, and SQLite refused the switch at once while
    another opener migrated: about one start in eight failed with 'database is locked'."""
    for trial in range(30):
        opened, errors = opened_at_once(f"sqlite:///{tmp_path}/{trial}/accounts.db")
        for store in opened:
            store.close()
        assert errors == [] and len(opened) == 6, (trial, errors)


def test_a_database_from_a_newer_ivr_is_refused(url):
    Store(url).close()
    engine = sqlalchemy.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sqlalchemy.text("INSERT INTO schema_version (version) VALUES (99)"))
    engine.dispose()
    with pytest.raises(StoreUnavailable, match="schema version 99"):
        Store(url)


def test_an_unreachable_database_is_store_unavailable(tmp_path, postgres):
    (tmp_path / "a-file").write_text("not a folder")
    with pytest.raises(StoreUnavailable):
        Store(f"sqlite:///{tmp_path / 'a-file' / 'accounts.db'}")
    (tmp_path / "garbage.db").write_bytes(os.urandom(8192))
    with pytest.raises(StoreUnavailable, match="unavailable"):
        Store(f"sqlite:///{tmp_path / 'garbage.db'}")
    nobody = tmp_path / "no-server"
    nobody.mkdir()
    started = time.monotonic()
    with pytest.raises(StoreUnavailable, match="unavailable"):
        Store(f"postgresql+psycopg2://postgres@/accounts?host={nobody}&port=5432")
    assert time.monotonic() - started < 10


def test_a_database_that_goes_away_is_store_unavailable(postgres, tokens, tmp_path):
    name = postgres.create_database()
    store = Store(postgres.url(name))
    seed(store, tokens)
    postgres.drop_database(name)  # terminates the store's connections too
    with pytest.raises(StoreUnavailable):
        store.account("48151623")
    store.close()

    path = tmp_path / "db" / "accounts.db"
    with Store(f"sqlite:///{path}") as sqlite_store:
        seed(sqlite_store, tokens)
        shutil.rmtree(path.parent)
        path.parent.mkdir()
        path.write_bytes(os.urandom(8192))
        with pytest.raises(StoreUnavailable):
            sqlite_store.account("48151623")


def test_the_database_url_comes_from_the_environment_or_the_var_folder(tmp_path):
    settings = Settings(var_dir=tmp_path / "var")
    assert database_url(settings, env={}) == f"sqlite:///{tmp_path / 'var' / 'accounts.db'}"
    assert database_url(settings, env={"IVR_DATABASE_URL": "postgresql+psycopg2://ivr@/ivr"}) == \
        "postgresql+psycopg2://ivr@/ivr"


def test_a_store_opened_for_calls_is_never_created_empty(url, tokens):
    """Calls open the store with create=False: a database never set up is unavailable, not made anew."""
    with pytest.raises(StoreUnavailable, match="ivr db seed"):
        Store(url, create=False)
    with pytest.raises(StoreUnavailable):  # and that failed open left nothing behind to be found next time
        Store(url, create=False)
    with Store(url) as made:  # `ivr db seed` creates it
        seed(made, tokens)
    with Store(url, create=False) as opened:
        assert opened.account("48151623").balance_cents == 12075
