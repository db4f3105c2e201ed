"""The escalation queue store against real databases (SQLite files and a throwaway PostgreSQL server): the order
callers are served in, what happens to a caller while they wait (a callback, hanging up, an agent who never
picks up, wrap-up, their place and wait), and the live feed and reports. Agents: test_queue_agents.py; restarts
and database trouble: test_queue_database.py."""
from __future__ import annotations

import pytest

from ivr.queue import (ABANDONED, AVAILABLE, BUSY, CALLBACK, DISPOSITIONS, OFFLINE, TAKEN, WAITING, WRAPPED_UP,
                       AgentBusy, AlreadyTaken, BadAgent, Position, QueueError, UnknownEntry)
from ivr.queue.routing import AGEING_SECONDS
from ivr.queue.store import DEFAULT_HANDLE_SECONDS
from queue_fixtures import at, caller, on_duty, queue, url  # noqa: F401 - queue, url: a fresh queue on each database


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
