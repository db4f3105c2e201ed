"""Payments against real databases (SQLite files and a throwaway PostgreSQL server): the balance and the ledger,
refusals that change nothing, a retry charged once, payments at the same moment, and payers killed mid-payment
leaving no payment or exactly one."""
from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from accounts_fixtures import KEYED, TODAY, backend, demo_card, store, tokens, url  # noqa: F401 - fixtures
from ivr.accounts import Address, PaymentRefused, Store, UnknownAccount, seed

ROOT = Path(__file__).resolve().parent.parent


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
