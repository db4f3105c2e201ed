"""The escalation queue store against real databases: SQLite files and a throwaway PostgreSQL server."""
from __future__ import annotations

import multiprocessing
import os
import select
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import fields
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import sqlalchemy

from conftest import fresh_database, ivr_command
from ivr.accounts import Store
from ivr.config import Settings
from ivr.events import Escalation, TranscriptLine
from ivr.queue import (ABANDONED, AVAILABLE, BUSY, CALLBACK, DISPOSITIONS, OFFLINE, TAKEN, WAITING, WRAPPED_UP,
                       AgentBusy, AlreadyTaken, BadAgent, Position, QueueError, QueueStore, QueueUnavailable,
                       UnknownEntry, queue_url)
from ivr.queue.routing import AGEING_SECONDS
from ivr.queue.store import DEFAULT_HANDLE_SECONDS

T0 = datetime(2026, 11, 24, 9, 0, tzinfo=timezone.utc)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def caller(reason="caller_request", task=None, language="en", frustration=0.0, **context) -> Escalation:
    return Escalation(reason=reason, task=task, language=language, frustration=frustration, **context)


def full_context(call_id: str) -> Escalation:
    """Every field of an Escalation set to something an agent would read."""
    return Escalation(
        reason="payment_declined", summary="Authenticated caller wants to pay $50.00 on 48…623; the card was declined.",
        task="bill_pay", slots={"account": "48…623", "amount": "$50.00", "card": "ending 4242", "city": "Zürich"},
        transcript=(TranscriptLine("bot", "How can I help?"), TranscriptLine("caller", "pay my bill"),
                    TranscriptLine("bot", "Your card was declined.")),
        frustration=0.45, caller_number="+13125550100", language="es", account="48…623", authenticated=True,
        call_id=call_id, channel="sip")


# --- databases -------------------------------------------------------------------------------------------------

@pytest.fixture(params=["sqlite", "postgresql"])
def url(request, tmp_path):
    """A fresh, empty queue database on each backend."""
    yield from fresh_database(request, tmp_path, "queue.db")


@pytest.fixture
def queue(url):
    with QueueStore(url) as store:
        yield store


def on_duty(store: QueueStore, name: str, skills="en,billing,address", state=AVAILABLE):
    store.add_agent(name, f"{name}-password", skills)
    return store.set_agent_state(name, state)


# --- routing ---------------------------------------------------------------------------------------------------

def test_higher_priority_callers_are_served_first(queue):
    calm = queue.enqueue(caller("caller_request"), now=at(0))
    declined = queue.enqueue(caller("payment_declined", task="bill_pay"), now=at(1))
    furious = queue.enqueue(caller("payment_declined", task="bill_pay", frustration=0.9), now=at(2))
    assert (calm.priority, declined.priority, furious.priority) == (1, 2, 3)
    assert [entry.id for entry in queue.routable(now=at(3))] == [furious.id, declined.id, calm.id]
    on_duty(queue, "alice")
    assert queue.take_next("alice", now=at(4)).id == furious.id


def test_callers_of_one_priority_are_served_first_come_first_served(queue):
    ids = [queue.enqueue(caller(call_id=f"call-{n}"), now=at(n * 5)).id for n in range(4)]
    assert [entry.id for entry in queue.routable(now=at(30))] == ids
    on_duty(queue, "alice")
    taken = []
    for n in range(4):
        entry = queue.take_next("alice", now=at(40 + n))
        taken.append(entry.id)
        queue.wrap_up(entry.id, "alice", "resolved", now=at(40 + n))
    assert taken == ids and queue.take_next("alice") is None


def test_ageing_lets_an_old_normal_caller_pass_a_new_high_one(queue):
    normal = queue.enqueue(caller("caller_request"), now=at(0))
    high_soon_after = queue.enqueue(caller("payment_failed"), now=at(AGEING_SECONDS / 2))
    high_much_later = queue.enqueue(caller("payment_failed"), now=at(AGEING_SECONDS + 30))
    order = [entry.id for entry in queue.routable(now=at(AGEING_SECONDS + 31))]
    assert order == [high_soon_after.id, normal.id, high_much_later.id]
    assert [entry.id for entry in queue.routable(now=at(3600))] == order  # everyone ages alike: order holds


def test_callers_go_to_agents_with_their_skills(queue):
    address = queue.enqueue(caller(task="address_change"), now=at(0))
    billing = queue.enqueue(caller(task="bill_pay"), now=at(1))
    spanish = queue.enqueue(caller(task="balance", language="es"), now=at(2))
    anything = queue.enqueue(caller(), now=at(3))
    assert (address.skills, billing.skills, spanish.skills, anything.skills) == \
        (("en", "address"), ("en", "billing"), ("es", "billing"), ("en",))
    on_duty(queue, "bill", "en,billing")
    on_duty(queue, "addy", "en,address")
    assert queue.take_next("bill").id == billing.id
    with pytest.raises(AgentBusy, match=f"already with caller {billing.id}"):  # one caller at a time
        queue.take_next("bill")
    queue.wrap_up(billing.id, "bill", "resolved")
    assert queue.take_next("bill").id == anything.id
    queue.wrap_up(anything.id, "bill", "resolved")
    assert queue.take_next("bill") is None  # the address and Spanish callers are not his
    with pytest.raises(BadAgent, match="lacks es"):
        queue.take(spanish.id, "bill")
    assert queue.take_next("addy").id == address.id
    assert [entry.id for entry in queue.routable()] == [spanish.id]
    on_duty(queue, "ana", "es,billing")
    assert queue.take(spanish.id, "ana").agent == "ana"


# --- callers: callbacks, hanging up, position --------------------------------------------------------------

def test_a_callback_keeps_the_callers_place(queue):
    first = queue.enqueue(caller(caller_number="+13125550100"), now=at(0))
    second = queue.enqueue(caller(), now=at(10))
    asked = queue.request_callback(first.id, "+1 (312) 555-0100", now=at(20))
    assert (asked.state, asked.callback_number, asked.enqueued_at) == (CALLBACK, "+13125550100", first.enqueued_at)
    assert queue.abandon(first.id, now=at(21)).state == CALLBACK  # hanging up after asking is expected
    assert [entry.id for entry in queue.routable()] == [first.id, second.id]
    assert queue.metrics(now=at(30))["callbacks_pending"] == 1
    on_duty(queue, "alice")
    called_back = queue.take_next("alice")
    assert (called_back.id, called_back.callback_number, called_back.state) == (first.id, "+13125550100", TAKEN)
    with pytest.raises(AlreadyTaken):
        queue.request_callback(first.id, "+13125550100")
    for not_callable in ("call me maybe", "555 0100", "1001"):  # words, no area code, an extension
        with pytest.raises(QueueError, match="a callback number is a phone number we can call"):
            queue.request_callback(second.id, not_callable)
    assert (queue.entry(second.id).state, [entry.id for entry in queue.routable()]) == (WAITING, [second.id])


def test_a_caller_who_hangs_up_is_abandoned_unless_already_taken(queue):
    gone = queue.enqueue(caller(), now=at(0))
    kept = queue.enqueue(caller(), now=at(1))
    hung_up = queue.abandon(gone.id, now=at(45))
    assert (hung_up.state, hung_up.ended_at) == (ABANDONED, at(45))
    on_duty(queue, "alice")
    assert queue.take_next("alice").id == kept.id
    assert queue.abandon(kept.id).state == TAKEN  # the agent has them; the transfer decides, not the hold line
    queue.wrap_up(kept.id, "alice", "resolved")
    with pytest.raises(AlreadyTaken, match="abandoned"):
        queue.take(gone.id, "alice")
    assert queue.metrics()["abandoned_total"] == 1
    with pytest.raises(UnknownEntry):
        queue.abandon(9999)


def test_a_caller_whose_agent_never_picked_up_goes_back_to_their_place(queue):
    first = queue.enqueue(caller(), now=at(0))
    second = queue.enqueue(caller(), now=at(10))
    on_duty(queue, "alice")
    on_duty(queue, "bob")
    assert queue.take_next("alice", now=at(20)).id == first.id
    back = queue.return_to_queue(first.id, now=at(50))
    assert (back.state, back.agent, back.taken_at, back.enqueued_at) == (WAITING, None, None, at(0))
    assert queue.agent("alice").state == OFFLINE  # not at her phone: she gets no more callers
    assert [e.id for e in queue.routable(now=at(51))] == [first.id, second.id]  # still first in line
    assert queue.take_next("bob", now=at(52)).id == first.id
    assert [e.kind for e in queue.events_after(0)].count("returned") == 1
    queue.connected(first.id)
    with pytest.raises(QueueError, match="not waiting to be put through"):
        queue.return_to_queue(first.id)  # once put through, the caller is the agent's


def test_wrap_up_records_the_disposition_and_frees_the_agent(queue):
    entry = queue.enqueue(caller(task="bill_pay"), now=at(0))
    on_duty(queue, "alice")
    on_duty(queue, "bob")
    assert queue.take(entry.id, "alice", now=at(30)).agent == "alice"
    assert queue.agent("alice").state == BUSY
    with pytest.raises(AlreadyTaken, match="alice"):
        queue.take(entry.id, "bob")
    assert queue.connected(entry.id, now=at(32)).connected_at == at(32)
    with pytest.raises(QueueError, match="alice's, not bob's"):
        queue.wrap_up(entry.id, "bob", "resolved")
    with pytest.raises(QueueError, match="resolved, follow_up"):
        queue.wrap_up(entry.id, "alice", "sorted it")
    done = queue.wrap_up(entry.id, "alice", "follow_up", now=at(200))
    assert (done.state, done.disposition, done.ended_at, done.taken_at) == (WRAPPED_UP, "follow_up", at(200), at(30))
    assert queue.agent("alice").state == AVAILABLE
    assert queue.wrap_up(entry.id, "alice", "follow_up") == done  # a second click changes nothing
    assert "caller_hung_up" in DISPOSITIONS


def test_position_and_wait_come_from_recent_handle_times(queue):
    for name in ("alice", "bob"):
        on_duty(queue, name)
    first = queue.enqueue(caller(), now=at(0))
    assert queue.position(first.id) == Position(ahead=0, estimated_wait_s=0.0)  # agents are free
    second = queue.enqueue(caller(), now=at(1))
    queue.take_next("alice", now=at(10))
    queue.take_next("bob", now=at(10))
    queue.wrap_up(first.id, "alice", "resolved", now=at(110))  # handled in 100 s
    queue.wrap_up(second.id, "bob", "resolved", now=at(210))  # handled in 200 s
    waiting = [queue.enqueue(caller(), now=at(400 + n)) for n in range(3)]
    spanish = queue.enqueue(caller(language="es"), now=at(405))
    for name in ("alice", "bob"):
        queue.set_agent_state(name, BUSY)
    # 150 s per caller on average, two English speakers on duty, both busy.
    assert [queue.position(e.id) for e in waiting] == [Position(0, 75.0), Position(1, 150.0), Position(2, 225.0)]
    assert queue.position(waiting[2].id).place == 3
    assert queue.position(spanish.id).ahead == 0  # English callers are not ahead of a Spanish one
    assert queue.position(spanish.id).estimated_wait_s == 150.0  # nobody speaks Spanish: one agent's pace
    queue.set_agent_state("alice", AVAILABLE)
    assert queue.position(waiting[0].id).estimated_wait_s == 0.0
    queue.take_next("alice")
    assert queue.position(waiting[0].id) == Position(0, 0.0)  # taken: no longer waiting


def test_with_no_history_the_wait_is_a_default_handle_time(queue):
    on_duty(queue, "alice", state=BUSY)
    entry = queue.enqueue(caller())
    assert queue.position(entry.id).estimated_wait_s == DEFAULT_HANDLE_SECONDS


# --- agents ----------------------------------------------------------------------------------------------------

def test_agents_sign_in_with_a_hashed_password(queue, url):
    added = queue.add_agent("alice", "correct horse", "billing, EN", sip_address="sip:alice@127.0.0.1:5070")
    assert (added.skills, added.state, added.sip_address) == (("billing", "en"), OFFLINE, "sip:alice@127.0.0.1:5070")
    assert queue.check_agent("alice", "correct horse").name == "alice"
    for name, password in (("alice", "wrong"), ("mallory", "correct horse"), ("alice", "")):
        with pytest.raises(BadAgent, match="^unknown agent or wrong password$"):
            queue.check_agent(name, password)
    engine = sqlalchemy.create_engine(url, future=True)
    with engine.connect() as conn:
        stored = conn.execute(sqlalchemy.text("SELECT password_hash FROM queue_agents")).scalar()
    engine.dispose()
    assert stored.startswith("scrypt$") and "correct horse" not in stored
    queue.set_agent_state("alice", AVAILABLE)
    again = queue.add_agent("alice", "battery staple", ["address", "en", "es"])
    assert (again.skills, again.state, again.sip_address) == (("address", "en", "es"), AVAILABLE,
                                                              "sip:alice@127.0.0.1:5070")
    assert queue.check_agent("alice", "battery staple").name == "alice"
    with pytest.raises(BadAgent):
        queue.check_agent("alice", "correct horse")
    assert [agent.name for agent in queue.agents()] == ["alice"]


@pytest.mark.parametrize("call, message", [
    (lambda q: q.add_agent("", "pw", "en"), "an agent's name is 1 to 64 letters"),
    (lambda q: q.add_agent("al ice", "pw", "en"), "an agent's name"),
    (lambda q: q.add_agent("alice", "", "en"), "password that is not empty"),
    (lambda q: q.add_agent("alice", "pw", "billing"), "one or more language codes"),
    (lambda q: q.add_agent("alice", "pw", "en,plumbing"), "plus any of address, billing"),
    (lambda q: q.add_agent("alice", "pw", "en", sip_address="alice@host"), "sip:alice@127.0.0.1:5070"),
    (lambda q: q.set_agent_state("nobody", AVAILABLE), "no agent named 'nobody'"),
    (lambda q: q.set_agent_state("alice", "lunch"), "available, busy, wrap_up, offline"),
    (lambda q: q.take_next("sleepy"), "offline: set them available"),
    (lambda q: q.entry(12345), "no caller 12345"),
])
def test_mistakes_are_refused_with_what_is_allowed(queue, call, message):
    queue.add_agent("alice", "pw", "en")
    queue.add_agent("sleepy", "pw", "en")
    with pytest.raises(QueueError, match=message):
        call(queue)
    assert [agent.name for agent in queue.agents()] == ["alice", "sleepy"]
    assert queue.agent("alice").state == OFFLINE


# --- live feed and reports -------------------------------------------------------------------------------------

def test_every_change_is_one_event_in_order(queue):
    start = queue.last_event_id()
    entry = queue.enqueue(caller("no_match"), now=at(0))
    on_duty(queue, "alice")
    queue.take_next("alice", now=at(60))
    queue.connected(entry.id, now=at(61))
    queue.wrap_up(entry.id, "alice", "resolved", now=at(90))
    second = queue.enqueue(caller(), now=at(100))
    queue.request_callback(second.id, "3125550100", now=at(101))
    third = queue.enqueue(caller(), now=at(102))
    queue.abandon(third.id, now=at(103))
    events = queue.events_after(start)
    assert [(e.kind, e.entry_id, e.agent, e.detail) for e in events] == [
        ("enqueued", entry.id, None, "no_match"), ("agent_added", None, "alice", "address,billing,en"),
        ("agent_state", None, "alice", AVAILABLE), ("taken", entry.id, "alice", ""),
        ("connected", entry.id, "alice", ""), ("wrapped_up", entry.id, "alice", "resolved"),
        ("enqueued", second.id, None, "caller_request"), ("callback", second.id, None, "+13125550100"),
        ("enqueued", third.id, None, "caller_request"), ("abandoned", third.id, None, "")]
    assert [e.id for e in events] == sorted(e.id for e in events) and events[-1].id == queue.last_event_id()
    assert events[3].at == at(60)
    assert queue.events_after(events[7].id) == events[8:]
    assert len(queue.events_after(start, limit=3)) == 3


def test_metrics_for_the_manager(queue):
    on_duty(queue, "alice")
    answered = [queue.enqueue(caller("frustration", frustration=0.8), now=at(0)),
                queue.enqueue(caller("caller_request"), now=at(5))]
    queue.take_next("alice", now=at(40))
    queue.wrap_up(answered[0].id, "alice", "resolved", now=at(50))
    queue.take_next("alice", now=at(65))
    gone = queue.enqueue(caller("no_input"), now=at(70))
    queue.abandon(gone.id, now=at(80))
    queue.enqueue(caller("caller_request"), now=at(100))
    later = queue.enqueue(caller("no_match"), now=at(110))
    queue.request_callback(later.id, "3125550100")
    assert queue.metrics(now=at(130)) == {
        "waiting": 1, "callbacks_pending": 1, "longest_wait_s": 30.0, "taken_total": 2, "abandoned_total": 1,
        "wait_seconds": [40.0, 60.0],
        "escalations_by_reason": {"frustration": 1, "caller_request": 2, "no_input": 1, "no_match": 1}}
    assert [e.state for e in queue.entries()] == [WRAPPED_UP, TAKEN, ABANDONED, WAITING, CALLBACK]
    assert [e.id for e in queue.entries(since=at(70))] == [gone.id, later.id - 1, later.id]


# --- restart ---------------------------------------------------------------------------------------------------

def test_a_restart_loses_nothing(url):
    with QueueStore(url) as store:
        contexts = [full_context(f"call-{n}") for n in range(4)]
        ids = [store.enqueue(context, now=at(n)).id for n, context in enumerate(contexts)]
        store.request_callback(ids[3], "+13125550199")
        store.add_agent("alice", "pw", "en,billing", sip_address="sip:alice@127.0.0.1:5070")
    unset = Escalation(reason="")
    assert all(getattr(contexts[0], f.name) != getattr(unset, f.name) for f in fields(Escalation))  # all set
    with QueueStore(url) as reopened:
        routable = reopened.routable()
        assert [entry.id for entry in routable] == ids
        assert [entry.escalation for entry in routable] == contexts
        assert [entry.state for entry in routable] == [WAITING] * 3 + [CALLBACK]
        assert routable[3].callback_number == "+13125550199"
        assert [entry.enqueued_at for entry in routable] == [at(n) for n in range(4)]
        assert reopened.check_agent("alice", "pw").sip_address == "sip:alice@127.0.0.1:5070"
        assert [e.kind for e in reopened.events_after(0)] == ["enqueued"] * 4 + ["callback", "agent_added"]


# --- two agents, one caller ------------------------------------------------------------------------------------

def take_until_empty(url: str, names: list) -> list:
    """Agents, each on its own thread and store, taking callers at the same moment, then taking and wrapping up
    until none is left. Returns (caller id, agent name) for every take."""
    taken, errors = [], []
    together = threading.Barrier(len(names), timeout=60)

    def work(name):
        try:
            with QueueStore(url) as store:
                together.wait()
                entry = store.take_next(name)
                together.wait()  # everyone has tried once before anyone takes a second caller
                while entry is not None:
                    taken.append((entry.id, name))
                    store.wrap_up(entry.id, name, "resolved")
                    entry = store.take_next(name)
        except Exception as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=work, args=(name,)) for name in names]
    [thread.start() for thread in threads]
    [thread.join(120) for thread in threads]
    assert not errors, errors
    return taken


def test_twenty_agents_at_once_take_every_caller_exactly_once(queue, url):
    ids = {queue.enqueue(caller(call_id=f"call-{n}"), now=at(n)).id for n in range(50)}
    names = [f"agent{n:02d}" for n in range(20)]
    for name in names:
        on_duty(queue, name)
    taken = take_until_empty(url, names)
    assert Counter(entry_id for entry_id, _ in taken) == Counter(ids)
    assert {name for _, name in taken} == set(names)  # all twenty claimed at once, each got a caller
    assert all(entry.state == WRAPPED_UP for entry in queue.entries())
    assert queue.metrics()["taken_total"] == 50
    assert Counter(e.kind for e in queue.events_after(0))["taken"] == 50
    assert {agent.state for agent in queue.agents()} == {AVAILABLE}


def test_an_agent_skips_a_caller_another_agent_is_taking(postgres):
    """PostgreSQL only: SQLite has no row locks, its writers take turns."""
    url = postgres.url(postgres.create_database())
    queue = QueueStore(url)
    first, second = queue.enqueue(caller(), now=at(0)), queue.enqueue(caller(), now=at(1))
    on_duty(queue, "alice")
    engine = sqlalchemy.create_engine(url, future=True)
    with engine.connect() as other_agent:  # in the middle of taking the first caller, row locked
        other_agent.execute(sqlalchemy.text("SELECT id FROM queue_entries WHERE id = :id FOR UPDATE"),
                            {"id": first.id})
        taken = []
        taking = threading.Thread(target=lambda: taken.append(queue.take_next("alice")), daemon=True)
        taking.start()
        taking.join(5)
        waited = taking.is_alive()
        other_agent.rollback()  # lets a take_next that waited for the lock finish, so nothing hangs
        taking.join(30)
    assert not waited, "take_next waited for a caller another agent was taking"
    assert taken[0].id == second.id
    engine.dispose()
    assert queue.entry(first.id).state == WAITING
    queue.close()


def _agents_in_a_process(url: str, names: list, ready, results) -> None:
    ready.wait(60)  # both processes loaded before either takes a caller
    try:
        results.put(take_until_empty(url, names))
    except BaseException as error:  # noqa: BLE001 - the test process reports it
        results.put(error)


def test_two_processes_take_every_caller_exactly_once(postgres):
    url = postgres.url(postgres.create_database())
    with QueueStore(url) as store:
        ids = {store.enqueue(caller(call_id=f"call-{n}"), now=at(n)).id for n in range(50)}
        names = [f"agent{n:02d}" for n in range(10)]
        for name in names:
            on_duty(store, name)
    spawn = multiprocessing.get_context("spawn")
    ready, results = spawn.Barrier(2), spawn.Queue()
    processes = [spawn.Process(target=_agents_in_a_process, args=(url, half, ready, results))
                 for half in (names[:5], names[5:])]
    [process.start() for process in processes]
    per_process = [results.get(timeout=120) for _ in processes]
    [process.join(30) for process in processes]
    assert not [result for result in per_process if isinstance(result, BaseException)], per_process
    taken = [entry_id for taken in per_process for entry_id, _ in taken]
    assert Counter(taken) == Counter(ids)
    assert {name for taken in per_process for _, name in taken} == set(names)


# --- opening, failing, configuration ----------------------------------------------------------------------------

def test_an_unreachable_database_is_queue_unavailable_without_its_password(tmp_path):
    nobody = tmp_path / "no-server"
    nobody.mkdir()
    started = time.monotonic()
    with pytest.raises(QueueUnavailable, match="queue database postgresql") as raised:
        QueueStore(f"postgresql+psycopg2://ivr:s3cret@/queue?host={nobody}&port=5432")
    assert "s3cret" not in str(raised.value) and "***" in str(raised.value)
    assert time.monotonic() - started < 10
    (tmp_path / "garbage.db").write_bytes(os.urandom(8192))
    with pytest.raises(QueueUnavailable, match="unavailable"):
        QueueStore(f"sqlite:///{tmp_path / 'garbage.db'}")
    with pytest.raises(QueueUnavailable, match="use sqlite:///PATH"):
        QueueStore("mysql://localhost/queue")


def test_the_queue_and_accounts_share_one_postgresql_database(postgres):
    url = postgres.url(postgres.create_database())
    with Store(url) as accounts, QueueStore(url) as queue:
        assert accounts.schema_version() == 1 and queue.schema_version() == 3
        assert queue.enqueue(caller()).state == WAITING
    with QueueStore(url) as queue:  # reopening migrates nothing again
        assert len(queue.entries()) == 1


def test_the_queue_lives_beside_the_accounts_unless_a_url_is_given(tmp_path):
    settings = Settings(var_dir=tmp_path / "var")
    assert queue_url(settings, env={}) == f"sqlite:///{tmp_path / 'var' / 'queue.db'}"
    assert queue_url(settings, env={"IVR_DATABASE_URL": "postgresql+psycopg2://ivr@/ivr"}) == \
        "postgresql+psycopg2://ivr@/ivr"


def test_ivr_agents_add_and_list(tmp_path):
    env = {"IVR_VAR": str(tmp_path / "var"), "IVR_DATABASE_URL": ""}
    added = ivr_command("agents", "add", "alice", "--skills", "billing,en", "--sip", "sip:alice@127.0.0.1:5070",
                        "--password-stdin", input="open sesame seed\n", env=env, timeout=60)
    assert added.returncode == 0, added.stderr
    assert "agent alice added: skills billing,en" in added.stdout
    updated = ivr_command("agents", "add", "alice", "--skills", "en,address", "--password-stdin",
                          input="new words of mine\n", env=env, timeout=60)
    assert "agent alice updated: skills address,en, rings at sip:alice@127.0.0.1:5070" in updated.stdout
    listed = ivr_command("agents", "list", env=env, timeout=60)
    assert listed.stdout.split() == ["alice", "offline", "address,en", "sip:alice@127.0.0.1:5070"]
    empty = ivr_command("agents", "add", "bob", "--skills", "en", "--password-stdin", input="\n", env=env, timeout=60)
    assert (empty.returncode, empty.stderr.strip()) == (2, "ivr: an agent's password cannot be empty")
    no_terminal = ivr_command("agents", "add", "bob", "--skills", "en", input="", env=env, timeout=60)
    assert no_terminal.returncode == 2 and "--password-stdin" in no_terminal.stderr
    bad_skills = ivr_command("agents", "add", "bob", "--skills", "en;billing", "--password-stdin", input="pw\n",
                             env=env, timeout=60)
    assert bad_skills.returncode == 2 and "e.g. billing,en" in bad_skills.stderr
    for weak, rule in (("pw", "at least 10 characters"), ("bob-is-the-best", "not the agent's name"),
                       ("aaaaaaaaaaaa", "a single repeated key")):  # one-character passwords were accepted
        refused = ivr_command("agents", "add", "bob", "--skills", "en", "--password-stdin", input=f"{weak}\n",
                              env=env, timeout=60)
        assert refused.returncode == 2 and rule in refused.stderr, (weak, refused.stderr)
    with QueueStore(queue_url(Settings(var_dir=tmp_path / "var"), env={})) as store:
        assert store.check_agent("alice", "new words of mine").skills == ("address", "en")
        assert [agent.name for agent in store.agents()] == ["alice"]


def typed_at_a_terminal(args: list, answers: list, env: dict) -> tuple:
    """Run `ivr` with a terminal as its standard input and type each answer once its prompt (…:) shows."""
    terminal, typed_on = os.openpty()
    process = subprocess.Popen([str(Path(sys.executable).parent / "ivr"), *args], stdin=typed_on,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=dict(os.environ, **env),
                               start_new_session=True)  # no controlling terminal: getpass uses the one given
    os.close(typed_on)
    for answer in answers:
        prompt, deadline = b"", time.monotonic() + 20
        while not prompt.rstrip().endswith(b":") and time.monotonic() < deadline:
            if select.select([process.stderr], [], [], 1)[0]:
                prompt += os.read(process.stderr.fileno(), 1024)
        os.write(terminal, answer.encode() + b"\n")
    out, err = process.communicate(timeout=20)
    os.close(terminal)
    return process.returncode, out, err.decode()


def test_ivr_agents_add_asks_for_the_password_twice_on_a_terminal(tmp_path):
    env = {"IVR_VAR": str(tmp_path / "var"), "IVR_DATABASE_URL": ""}
    status, out, _ = typed_at_a_terminal(["agents", "add", "carol", "--skills", "en"], ["open sesame"] * 2, env)
    assert (status, out) == (0, b"agent carol added: skills en\n")
    status, _, err = typed_at_a_terminal(["agents", "add", "carol", "--skills", "en"], ["new", "New"], env)
    assert status == 2 and "ivr: the two passwords differ: nothing was changed" in err
    with QueueStore(queue_url(Settings(var_dir=tmp_path / "var"), env={})) as store:
        assert store.check_agent("carol", "open sesame").name == "carol"


def test_a_call_gives_up_on_a_locked_queue_within_its_wait_on_either_database(url):
    """Another connection holds the entries table's lock: enqueue is QueueUnavailable after about `wait_s`."""
    import time

    import sqlalchemy

    from ivr.queue import QueueUnavailable

    QueueStore(url).close()  # set up, as `ivr serve` would have
    calls = QueueStore(url, wait_s=1.0)
    holder = sqlalchemy.create_engine(url).connect()
    try:
        if holder.dialect.name == "sqlite":
            holder.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            holder.exec_driver_sql("BEGIN; LOCK TABLE queue_entries IN ACCESS EXCLUSIVE MODE")
        began = time.monotonic()
        with pytest.raises(QueueUnavailable):
            calls.enqueue(caller())
        assert time.monotonic() - began < 10  # bounded by wait_s, not the 30 s a command waits
    finally:
        holder.exec_driver_sql("ROLLBACK")
        holder.close()
        calls.close()
