"""Agents of the escalation queue against real databases: signing in, being refused with what is allowed, set up
with `ivr agents add` (a password typed twice at a terminal), and many agents taking callers at the same moment,
in threads and in two processes, each caller exactly once."""
from __future__ import annotations

import multiprocessing
import os
import select
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
import sqlalchemy

from conftest import ivr_command
from ivr.config import Settings
from ivr.queue import AVAILABLE, OFFLINE, WAITING, WRAPPED_UP, BadAgent, QueueError, QueueStore, queue_url
from queue_fixtures import at, caller, on_duty, queue, url  # noqa: F401 - queue, url: a fresh queue on each database


# --- signing in, mistakes --------------------------------------------------------------------------------------

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


# --- ivr agents add --------------------------------------------------------------------------------------------

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
