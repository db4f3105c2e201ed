"""What the queue's test files share: a fresh queue on each database, callers arriving at known moments, and
agents put on duty. Import the fixtures into a test file (`from queue_fixtures import queue, url`)."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from conftest import fresh_database
from ivr.events import Escalation
from ivr.queue import AVAILABLE, QueueStore

T0 = datetime(2026, 11, 24, 9, 0, tzinfo=timezone.utc)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def caller(reason="caller_request", task=None, language="en", frustration=0.0, **context) -> Escalation:
    return Escalation(reason=reason, task=task, language=language, frustration=frustration, **context)


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
