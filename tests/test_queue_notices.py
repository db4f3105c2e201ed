"""A call holding a caller learns when another process takes them: PostgreSQL's LISTEN/NOTIFY, SQLite's short
poll, one interface (ivr.queue.notices). The taker is a real second process with its own connection, as a
console served by another worker is; the holder waits for the notice with a deadline and the figures (from
the take's commit to the holder learning it) are printed for the README."""
from __future__ import annotations

import asyncio
import statistics
import subprocess
import sys
import time

import pytest
import sqlalchemy

from call_harness import FRAME, Dialog, Line, Recognizer, run_call
from test_call_timeline import speech  # noqa: F401 - the fixture: a real flite "I want to talk to an agent"
from queue_fixtures import queue, url  # noqa: F401 - the fixtures: a fresh queue on each database
from conftest import ROOT
from ivr.call import Backstage
from ivr.dialog.agent import DialogReply
from ivr.dialog.settings import HoldSettings
from ivr.events import Escalation, Prompt
from ivr.masking import Seal
from ivr.queue import AVAILABLE, TAKEN, QueueStore
from ivr.queue import notices
from ivr.queue.notices import QueueNotices

DEADLINE_S = 30.0  # a notice later than this is not coming: the safety look is pushed far past it
TAKES = 5

# The other process: takes the entry named on each line of its input for the agent named after it, and
# prints the wall-clock moment its transaction committed.
TAKER = """
import sys, time
from ivr.queue import QueueStore
with QueueStore(sys.argv[1]) as queue:
    for line in sys.stdin:
        entry_id, agent = line.split()
        queue.take(int(entry_id), agent)
        print(time.time(), flush=True)
"""


@pytest.fixture(autouse=True)
def no_safety_look(monkeypatch):
    """Only a notice can wake a holder in these tests: its safety look is due long after the deadline."""
    monkeypatch.setattr(notices, "SAFETY_S", 10 * DEADLINE_S)


def agents_on_duty(queue: QueueStore, count: int) -> list[str]:
    names = [f"agent{number}" for number in range(count)]
    for name in names:
        queue.add_agent(name, "correct horse battery", "en,billing")
        queue.set_agent_state(name, AVAILABLE)
    return names


class Taker:
    """The other process, taking callers on request."""

    def __init__(self, url: str):
        self.process = subprocess.Popen([sys.executable, "-c", TAKER, url], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, text=True, cwd=ROOT)

    async def take(self, entry_id: int, agent: str) -> float:
        self.process.stdin.write(f"{entry_id} {agent}\n")
        self.process.stdin.flush()
        line = await asyncio.get_running_loop().run_in_executor(None, self.process.stdout.readline)
        assert line, "the taking process ended without taking the caller"
        return float(line)

    def close(self) -> None:
        self.process.stdin.close()
        assert self.process.wait(30) == 0


async def learnt(watch: notices.Watch) -> float:
    """Waits (within the deadline) until the holder is told to look: the wall-clock moment it was."""
    never = asyncio.get_running_loop().create_future()
    try:
        assert await asyncio.wait_for(watch.until_due(never), DEADLINE_S), "the holder was never told"
    finally:
        never.cancel()
    return time.time()


async def hold_and_take(queue: QueueStore, url: str, takes: int) -> list[float]:
    """Each time: two callers on hold in this process, the other process takes one; only its holder is woken.
    Returns how long after each take committed its holder learnt it (ms)."""
    agents = agents_on_duty(queue, takes)
    listening = await QueueNotices(queue).start()
    taker = Taker(url)
    figures = []
    try:
        for agent in agents:
            taken, left = queue.enqueue(Escalation("caller_request")), queue.enqueue(Escalation("caller_request"))
            with listening.watch(taken.id) as holder, listening.watch(left.id) as other:
                holder.looking(), other.looking()
                committed = asyncio.ensure_future(taker.take(taken.id, agent))
                woken = await learnt(holder)
                figures.append((woken - await committed) * 1000)
                assert not other.due()  # a take wakes its own caller's holder, nobody else's
                assert queue.entry(taken.id).state == TAKEN
            queue.abandon(left.id)
    finally:
        taker.close()
        await listening.stop()
    return figures


def test_a_holder_learns_at_once_when_another_process_takes_its_caller(queue, url):
    figures = asyncio.run(hold_and_take(queue, url, TAKES))
    backend = url.split(":")[0]
    print(f"\n{backend}: the holder learnt of a take {statistics.median(figures):.0f} ms (median), "
          f"{max(figures):.0f} ms (most) after it committed; each: {[round(f) for f in figures]}")


@pytest.mark.parametrize("url", ["postgresql"], indirect=True)
def test_the_listener_reconnects_when_its_connection_is_cut_and_holders_still_learn(queue, url):
    async def cut_then_take() -> None:
        agent, = agents_on_duty(queue, 1)
        listening = await QueueNotices(queue).start()
        try:
            entry = queue.enqueue(Escalation("caller_request"))
            with listening.watch(entry.id) as holder:
                holder.looking()
                assert cut_listener(url) == 1  # as a database restart or a dropped network would
                queue.take(entry.id, agent)  # may come while the listener is away: it wakes everyone when back
                await learnt(holder)
                holder.looking()
            fresh = queue.enqueue(Escalation("caller_request"))
            queue.wrap_up(entry.id, agent, "resolved")
            with listening.watch(fresh.id) as holder:  # listening again: the next take is heard as usual
                holder.looking()
                await asyncio.get_running_loop().run_in_executor(None, queue.take, fresh.id, agent)
                await learnt(holder)
        finally:
            await listening.stop()

    asyncio.run(cut_then_take())


def cut_listener(url: str) -> int:
    """Ends the notices listener's connection from the server's side; how many connections were ended."""
    engine = sqlalchemy.create_engine(url, future=True)
    try:
        with engine.connect() as conn:
            return len(conn.exec_driver_sql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                            "WHERE application_name = 'ivr-notices'").all())
    finally:
        engine.dispose()


# --- the hold on a virtual clock (tests/call_harness.py): a take in the middle of an announcement ---------------



def test_a_caller_taken_during_an_announcement_hears_connecting_at_once(speech, tmp_path):
    store = QueueStore(f"sqlite:///{tmp_path / 'queue.db'}")
    agent, = agents_on_duty(store, 1)
    line, recognizer = Line(speech, says_at=[7.0], hangs_up_at=40.0), Recognizer()
    recognizer.heard = ["I want to talk to an agent"]
    transfer = DialogReply([Prompt("Sure, I'll connect you with an agent now.", "utter_transfer", barge_in=False)],
                           escalation=Escalation("caller_request"))
    dialog = Dialog(DialogReply([Prompt("How can I help?", "utter_greet")]), {"I want to talk to an agent": transfer})
    listening = QueueNotices(store)
    take_at = []

    def during_the_announcement(loop) -> None:
        loop.create_task(listening.start())
        loop.call_at(39.0, lambda: loop.create_task(listening.stop()))

        def take_once_announcing() -> None:  # an agent on another screen takes the caller mid-sentence
            if not any("in line" in heard.text for heard in line.heard):
                return loop.call_later(0.5, take_once_announcing)
            take_at.append(loop.time() + 0.5)
            loop.call_at(take_at[0], store.take_next, agent)
        loop.call_soon(take_once_announcing)

    result = run_call(line, dialog, recognizer, Seal(tmp_path), Backstage(queue=store, hold=HoldSettings()),
                      before=during_the_announcement)

    connecting = line.said("An agent is ready").start
    announced = line.said("in line")
    assert announced.start < take_at[0] < connecting <= take_at[0] + notices.POLL_S + 3 * FRAME  # not 1 s, not 8
    assert line.clears and take_at[0] <= line.clears[-1] <= connecting  # the rest of the announcement was dropped
    assert not any("call you back" in heard.text for heard in line.heard)  # the callback offer never played
    assert (result.queue_outcome, store.entry(result.queue_entry).agent) == (TAKEN, agent)
    store.close()
