"""The escalation queue's databases: a restart loses nothing, an unreachable or locked database is
QueueUnavailable (without its password), and the queue lives beside the accounts, in one PostgreSQL database or
its own SQLite file."""
from __future__ import annotations

import os
import time
from dataclasses import fields

import pytest

from ivr.accounts import Store
from ivr.config import Settings
from ivr.events import Escalation, TranscriptLine
from ivr.queue import CALLBACK, WAITING, QueueStore, QueueUnavailable, queue_url
from queue_fixtures import at, caller, url  # noqa: F401 - url: a fresh queue database on each backend


def full_context(call_id: str) -> Escalation:
    """Every field of an Escalation set to something an agent would read."""
    return Escalation(
        reason="payment_declined", summary="Authenticated caller wants to pay $50.00 on 48…623; the card was declined.",
        task="bill_pay", slots={"account": "48…623", "amount": "$50.00", "card": "ending 4242", "city": "Zürich"},
        transcript=(TranscriptLine("bot", "How can I help?"), TranscriptLine("caller", "pay my bill"),
                    TranscriptLine("bot", "Your card was declined.")),
        frustration=0.45, caller_number="+13125550100", language="es", account="48…623", authenticated=True,
        call_id=call_id, channel="sip")


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
