"""Callers on hold belong to a live call: a process that dies (kill -9) leaves no phantom callers waiting.
Their leases run out and they leave the line, lost, or owed a callback in their old place when their number
is known; a restarted process sweeps its dead predecessor's callers at once. And an agent holds one caller
at a time, kept by the database."""
import os
import signal
import socket
import subprocess

import pytest
from sqlalchemy import create_engine, exc, text

from ivr.config import Settings
from ivr.queue import CALLBACK, LOST, TAKEN, WAITING, QueueStore, open_queue
from ivr.queue.leases import dead_here
from ivr.queue.schema import SCHEMA, agents, entries, events
from ivr.queue.store import LEASE_S
from ivr.storage import to_db
from old_schemas import made_by_old_ivr
from queue_fixtures import at, caller, on_duty, url  # noqa: F401 - url: both databases
from typed_caller import TerminalChat
from tests.eventually import once


def test_callers_of_a_dead_process_leave_the_line_and_a_known_number_is_called_back(url):  # noqa: F811
    with QueueStore(url, holder="worker-a/1/aa") as live, QueueStore(url, holder="worker-b/2/bb") as dead, \
            QueueStore(url) as console:
        known = dead.enqueue(caller(caller_number="+1 (217) 555-0123"), now=at(0))
        unknown = dead.enqueue(caller(caller_number="sip:anonymous@example.com"), now=at(1))
        mine = live.enqueue(caller(), now=at(2))
        typed_in = console.enqueue(caller(), now=at(3))  # queued by hand (no live call): never swept
        assert live.renew_leases(now=at(20)) == 1 and live.sweep_lost(now=at(25)) == []  # within the lease
        live.renew_leases(now=at(40))  # worker-b died after t=0: it renews no more
        swept = {entry.id: entry for entry in console.sweep_lost(now=at(LEASE_S + 10))}

        assert set(swept) == {known.id, unknown.id}
        assert (swept[known.id].state, swept[known.id].callback_number) == (CALLBACK, "+12175550123")
        assert swept[known.id].lost_at == at(LEASE_S + 10) and swept[known.id].ended_at is None
        assert (swept[unknown.id].state, swept[unknown.id].ended_at) == (LOST, at(LEASE_S + 10))
        assert [e.id for e in console.routable(now=at(50))] == [known.id, mine.id, typed_in.id]  # their old place
        assert console.position(mine.id, now=at(50)).ahead == 1  # the callback owed, no phantom
        metrics = console.metrics(now=at(50))
        assert (metrics["waiting"], metrics["callbacks_pending"]) == (2, 1)
        assert console.sweep_lost(now=at(LEASE_S + 20)) == []  # once
        assert [event.kind for event in console.events_after(0)].count("lost") == 1
        assert console.entry(mine.id).state == WAITING and console.entry(typed_in.id).state == WAITING


def test_a_restarted_process_knows_its_dead_predecessors_on_this_host():
    host = socket.gethostname()
    ended = subprocess.run(["true"])  # a process that is gone now
    gone_pid = subprocess.Popen(["true"])
    gone_pid.wait()
    alive = subprocess.Popen(["sleep", "30"])
    try:
        holders = [f"{host}/{gone_pid.pid}/aa", f"{host}/{alive.pid}/bb", f"{host}/{os.getpid()}/old",
                   f"{host}/{os.getpid()}/me", f"elsewhere/{gone_pid.pid}/cc", "not a holder"]
        assert ended.returncode == 0
        assert dead_here(holders, me=f"{host}/{os.getpid()}/me") == [f"{host}/{gone_pid.pid}/aa",
                                                                      f"{host}/{os.getpid()}/old"]
    finally:
        alive.kill()
        alive.wait()


def test_callers_on_hold_when_their_process_is_killed_are_not_left_waiting_after_a_restart(var_dir):
    """kill -9 with two callers on hold: after the restart nobody waits for them; the one whose number is known
    is owed a callback in their old place, the other is lost; the console says so."""
    settings = Settings.from_env()
    callers = [TerminalChat("--caller-number", "+1 217 555 0199"), TerminalChat()]
    try:
        for chat in callers:
            chat.until("How can I help")
            chat.say("agent")
            chat.until("in line")
        with open_queue(settings) as queue:
            held = {entry.escalation.caller_number: entry for entry in queue.routable()
                    if entry.escalation.channel == "chat" and entry.state == WAITING}
        assert len(held) == 2, held
    finally:
        for chat in callers:
            chat.process.send_signal(signal.SIGKILL)
            chat.process.wait(10)

    restarted = TerminalChat()
    try:
        restarted.until("How can I help")  # loaded: its lease keeper swept before the first caller
        with open_queue(settings) as queue:
            numbered, withheld = queue.entry(held["+1 217 555 0199"].id), queue.entry(held[None].id)
            still_waiting = [e.id for e in queue.routable() if e.state == WAITING and e.id in
                             (numbered.id, withheld.id)]
    finally:
        restarted.kill()
    assert still_waiting == []
    assert (numbered.state, numbered.callback_number, numbered.lost_at is not None) == (CALLBACK, "+12175550199", True)
    assert (withheld.state, withheld.lost_at is not None) == (LOST, True)


def test_a_queue_from_before_leases_keeps_its_callers_and_an_agent_keeps_one(url):  # noqa: F811
    """A version 1 queue (an agent held two callers then) migrates: rows and history kept, the older of the two
    owed follow-up, and from now on the database itself refuses an agent a second caller."""
    made_by_old_ivr(url, "queue", versions=1)
    old = create_engine(url, future=True)
    with old.begin() as conn:
        conn.execute(agents.insert().values(name="alice", password_hash="x", skills="en", state="busy",
                                            state_since=to_db(at(0))))
        for number in (1, 2):  # ids 1 and 2
            conn.execute(entries.insert().values(
                state=TAKEN, priority=1, need_language="en", reason="caller_request", summary="",
                slots="{}", transcript="[]", frustration=0.0, language="en", authenticated=False,
                call_id=f"c{number}", channel="sip", enqueued_at=to_db(at(number)), enqueued_epoch=float(number),
                agent="alice", taken_at=to_db(at(10 + number))))
            conn.execute(events.insert().values(kind="taken", at=to_db(at(10 + number)), entry_id=number,
                                                agent="alice", detail=""))
    old.dispose()
    with QueueStore(url) as queue:
        assert queue.schema_version() == SCHEMA.version  # the latest, however many upgrades came since
        assert (queue.entry(1).state, queue.entry(1).disposition) == ("wrapped_up", "follow_up")
        assert queue.entry(2).state == TAKEN and queue.entry(2).agent == "alice"
        assert [event.entry_id for event in queue.events_after(0)] == [1, 2]
        with pytest.raises(exc.IntegrityError), queue._db.transaction(write=True) as conn:
            conn.execute(text("UPDATE queue_entries SET state = 'taken', agent = 'alice' WHERE id = 1"))
        on_duty(queue, "bob", "en")
        lost = queue.enqueue(caller())
        with queue._db.transaction(write=True) as conn:  # 'lost' is a state the database accepts now
            conn.execute(entries.update().where(entries.c.id == lost.id).values(state=LOST))
        assert queue.entry(lost.id).state == LOST


def test_a_sibling_process_on_this_host_sweeps_a_killed_ones_callers_before_their_lease_runs_out(var_dir):
    """Workers of one cluster share a host: when one is killed, a live sibling sees its process gone and takes
    its callers out of the waiting line at its next renewal, while their leases still run."""
    settings = Settings.from_env()
    sibling, holder = TerminalChat(), TerminalChat("--caller-number", "+1 217 555 0142")
    try:
        sibling.until("How can I help")  # loaded, its start-up sweep done: what follows is its renewals' work
        holder.until("How can I help")
        holder.say("agent")
        holder.until("in line")
        with open_queue(settings) as queue:
            held = [e for e in queue.routable() if e.escalation.caller_number == "+1 217 555 0142"
                    and e.state == WAITING]
        assert len(held) == 1
        holder.process.send_signal(signal.SIGKILL)
        holder.process.wait(10)
        with open_queue(settings) as queue:
            swept = once(lambda: queue.entry(held[0].id), lambda entry: entry.state != WAITING,
                         LEASE_S + 30, "the killed process's caller leaving the waiting line")
            with queue._db.engine.connect() as conn:  # noqa: SLF001 - the lease as stored, for the proof below
                lease_until = conn.execute(text("SELECT lease_until FROM queue_entries WHERE id = :id"),
                                           {"id": held[0].id}).scalar()
    finally:
        for chat in (sibling, holder):
            if chat.process.poll() is None:
                chat.kill()
    assert (swept.state, swept.callback_number) == (CALLBACK, "+12175550142")
    assert swept.lost_at.timestamp() < lease_until  # swept as a dead process's caller, not as an expired lease
