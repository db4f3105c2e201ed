"""First-call resolution as a supervisor reads it from `ivr report --json`, over calls stored through the real
call records and queue, on SQLite and on a throwaway PostgreSQL.

A caller is known by their number or by the account they named; calling again about the same task within the
repeat window (7 days unless the reader says otherwise) leaves the earlier call unresolved.
"""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import Optional

import pytest

from conftest import ivr_command
from ivr.call_result import CallResult
from ivr.events import Escalation
from ivr.queue import QueueStore
from ivr.records import CallRecords

MONDAY = datetime(2026, 11, 2, 9, 0, tzinfo=timezone.utc)


@pytest.fixture(params=["sqlite", "postgresql"])
def databases(request, tmp_path):
    """(the environment `ivr report` runs with, the call records, the queue) on one kind of database."""
    var = tmp_path / "var"
    var.mkdir()
    if request.param == "sqlite":
        urls = (f"sqlite:///{var / 'calls.db'}", f"sqlite:///{var / 'queue.db'}")
        environment = {"IVR_VAR": str(var), "IVR_DATABASE_URL": ""}
    else:
        server = request.getfixturevalue("postgres")
        name = server.create_database()
        request.addfinalizer(lambda: server.drop_database(name))
        urls = (server.url(name),) * 2
        environment = {"IVR_VAR": str(var), "IVR_DATABASE_URL": server.url(name)}
    with CallRecords(urls[0]) as records, QueueStore(urls[1]) as queue:
        queue.add_agent("alice", "a long password", ["en", "billing", "address"])
        queue.set_agent_state("alice", "available", now=MONDAY - timedelta(days=30))
        yield environment, records, queue


def served(call_id: str, days: float, task: str = "balance", number: Optional[str] = "+15550001111",
           account: Optional[str] = None) -> CallResult:
    """A call the bot finished: the task done, `days` after Monday 09:00."""
    at = MONDAY + timedelta(days=days)
    return CallResult(call_id, "self_served", task, None, ["Hello."], [], 60.0, started_at=at,
                      ended_at=at + timedelta(seconds=60), channel="sip", caller_number=number,
                      tasks=[{"task": task, "completed": True}], account=account)


def to_an_agent(queue: QueueStore, call_id: str, days: float, disposition: str, task: str = "bill_pay",
                number: str = "+15550002222") -> CallResult:
    """A call handed to alice, who wraps the caller up with `disposition` ten minutes later."""
    at = MONDAY + timedelta(days=days)
    escalation = Escalation("caller_request", task=task, caller_number=number, call_id=call_id, channel="sip")
    entry = queue.enqueue(escalation, now=at + timedelta(seconds=90)).id
    queue.take(entry, "alice", now=at + timedelta(seconds=100))
    queue.wrap_up(entry, "alice", disposition, now=at + timedelta(minutes=10))
    return CallResult(call_id, "escalated", task, escalation, ["Hello."], [], 90.0, started_at=at,
                      ended_at=at + timedelta(seconds=90), channel="sip", caller_number=number, queue_entry=entry,
                      queue_outcome="taken")


def resolution(environment: dict, *flags: str, **more_environment: str) -> dict:
    result = ivr_command("report", "--json", *flags, env={**environment, **more_environment}, timeout=120)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)["first_call_resolution"]


def test_a_call_back_within_7_days_leaves_the_first_unresolved_and_one_after_8_days_does_not(databases):
    environment, records, _ = databases
    records.save(served("first", 0))
    records.save(served("back-in-a-week", 6.9))  # same number, same task, within 7 days
    records.save(served("bill", 0, task="bill_pay", number="+15550003333"))
    records.save(served("bill-again", 8, task="bill_pay", number="+15550003333"))  # 8 days on: a new need
    fcr = resolution(environment)
    assert fcr["bot"] == {"calls": 4, "resolved": 3, "rate": 0.75}
    assert (fcr["repeat_calls"], fcr["repeat_callers"], fcr["window_days"]) == (1, 1, 7)


def test_the_same_account_from_another_phone_is_the_same_caller(databases):
    environment, records, _ = databases
    records.save(served("from-home", 0, task="address_change", number="+15550004444", account="48…623"))
    records.save(served("from-work", 2, task="address_change", number=None, account="48…623"))
    records.save(served("someone-else", 3, task="address_change", number="+15550005555", account="51…900"))
    records.save(served("other-task", 1, task="balance", number="+15550004444"))  # not about the same task
    fcr = resolution(environment)
    assert fcr["bot"] == {"calls": 4, "resolved": 3, "rate": 0.75}
    assert fcr["repeat_calls"] == 1


def test_the_agents_wrap_up_feeds_it(databases):
    environment, records, queue = databases
    records.save(to_an_agent(queue, "settled", 0, "resolved", number="+15550006666"))
    records.save(to_an_agent(queue, "owed-more", 0.5, "follow_up", number="+15550007777"))
    records.save(to_an_agent(queue, "passed-on", 1, "transferred", number="+15550008888"))
    records.save(to_an_agent(queue, "thought-settled", 1.5, "resolved"))
    records.save(served("back-to-the-bot", 3, task="bill_pay", number="+15550002222"))  # the agent did not settle it
    fcr = resolution(environment)
    assert fcr["agents"] == {"calls": 4, "resolved": 1, "rate": 0.25}
    assert fcr["bot"] == {"calls": 1, "resolved": 1, "rate": 1.0}
    assert (fcr["repeat_calls"], fcr["repeat_callers"]) == (1, 1)


def test_the_window_is_the_readers_choice_after_the_fact(databases):
    environment, records, _ = databases
    records.save(served("first", 0))
    records.save(served("eight-days-on", 8))
    assert resolution(environment)["bot"]["resolved"] == 2
    assert resolution(environment, "--repeat-window-days", "9")["bot"]["resolved"] == 1
    from_environment = resolution(environment, IVR_REPEAT_WINDOW_DAYS="8.5")
    assert (from_environment["bot"]["resolved"], from_environment["window_days"]) == (1, 8.5)
    wrong = ivr_command("report", "--json", "--repeat-window-days", "a week", env=environment)
    assert (wrong.returncode, wrong.stdout) == (2, "")
    assert wrong.stderr == "ivr: the repeat-call window 'a week' is not a number of days between 0 and 366\n"


def test_a_report_since_a_date_counts_a_repeat_of_a_call_before_it(databases):
    environment, records, _ = databases
    records.save(served("last-week", 0))
    records.save(served("this-week", 5))
    fcr = resolution(environment, "--since", (MONDAY + timedelta(days=4)).date().isoformat())
    assert fcr["bot"] == {"calls": 1, "resolved": 1, "rate": 1.0}  # last week's call is not in the period
    assert (fcr["repeat_calls"], fcr["repeat_callers"]) == (1, 1)


def test_callers_who_withheld_their_number_are_not_one_caller(databases):
    """A SIP line gives "anonymous" (or a bare extension) for everyone who hides their number: no identity."""
    environment, records, _ = databases
    records.save(served("hidden-1", 0, task="bill_pay", number="anonymous"))
    records.save(served("hidden-2", 1, task="bill_pay", number="anonymous"))
    records.save(served("extension", 2, task="bill_pay", number="100"))
    records.save(served("hidden-with-account", 3, task="bill_pay", number="anonymous", account="48…623"))
    records.save(served("same-account", 4, task="bill_pay", number="Anonymous", account="48…623"))
    records.save(served("dialled-plain", 5, task="balance", number="2175550123"))
    records.save(served("dialled-full", 6, task="balance", number="+12175550123"))  # one number, two spellings
    fcr = resolution(environment)
    assert fcr["bot"] == {"calls": 7, "resolved": 5, "rate": 5 / 7}
    assert (fcr["repeat_calls"], fcr["repeat_callers"]) == (2, 2)
