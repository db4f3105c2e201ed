"""Two `ivr serve` processes on one PostgreSQL: what one shows, the other shows; a caller is taken once."""
from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from ivr.queue import open_queue
from tests.console_helpers import AgentBrowser, EventStream, Serve, escalation, settings_for

AGENTS, CALLERS = 20, 12


@pytest.fixture(scope="module")
def database_url(postgres):
    name = postgres.create_database()
    yield postgres.url(name)
    postgres.drop_database(name)


@pytest.fixture(scope="module")
def store(database_url, tmp_path_factory, monkeypatch_module):
    monkeypatch_module.setenv("IVR_DATABASE_URL", database_url)
    with open_queue(settings_for(tmp_path_factory.mktemp("unused"))) as queue:
        yield queue


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as patch:
        yield patch


@pytest.fixture(scope="module")
def consoles(store, database_url, tmp_path_factory):
    var_dir = tmp_path_factory.mktemp("cluster-var")  # one install: one secret, two processes
    with Serve(var_dir, database_url) as first, Serve(var_dir, database_url) as second:
        yield first, second


def shows(queue_event: str, entry_id: int) -> bool:
    return f'id="entry-{entry_id}"' in json.loads(queue_event)["html"]


def test_a_caller_queued_elsewhere_and_taken_on_one_console_shows_on_the_other(consoles, store):
    first, second = consoles
    store.add_agent("watcher", "pw-watcher", "en,billing")
    store.add_agent("taker", "pw-taker", "en,billing")
    watcher, taker = AgentBrowser(second.url), AgentBrowser(first.url)
    assert watcher.login("watcher", "pw-watcher").ok and taker.login("taker", "pw-taker").ok
    taker.post("agent/state", state="available")

    with EventStream(watcher, "events") as feed:
        assert feed.until(lambda kind, data: kind == "queue")  # the table as it is now
        entry = store.enqueue(escalation(summary="Queued by a call in another process."))
        arrived = feed.until(lambda kind, data: kind == "queue" and shows(data, entry.id))
        assert {"kind": "enqueued", "entry_id": entry.id} in [
            {key: json.loads(data)[key] for key in ("kind", "entry_id")} for kind, data in arrived if kind == "change"]
        assert "Queued by a call in another process." in json.loads(arrived[-1][1])["html"]

        assert taker.post(f"queue/{entry.id}/take").json()["holding"] == entry.id  # on the first console
        gone = feed.until(lambda kind, data: kind == "queue" and not shows(data, entry.id))
        assert any(kind == "change" and json.loads(data)["kind"] == "taken" and json.loads(data)["agent"] == "taker"
                   for kind, data in gone)
    assert entry.id not in [row["id"] for row in watcher.view()["queue"]]
    taker.post(f"calls/{entry.id}/wrap-up", disposition="resolved")


def test_twenty_agents_pressing_take_next_at_once_take_each_caller_exactly_once(consoles, store):
    agents = []
    for number in range(AGENTS):
        store.add_agent(f"agent{number:02d}", f"pw{number}", "en,billing")
        agent = AgentBrowser(consoles[number % 2].url)  # spread over both servers
        assert agent.login(f"agent{number:02d}", f"pw{number}").ok
        assert agent.post("agent/state", state="available").ok
        agents.append(agent)
    callers = {store.enqueue(escalation(summary=f"caller {n}")).id for n in range(CALLERS)}

    start = threading.Barrier(AGENTS)

    def press_take_next(agent):
        start.wait()
        return agent.post("queue/take-next").json()

    with ThreadPoolExecutor(AGENTS) as pool:
        answers = list(pool.map(press_take_next, agents))

    held = [answer["holding"] for answer in answers if answer["holding"]]
    assert sorted(held) == sorted(callers)  # every caller taken, none twice
    assert sum(answer["message"] == "Nobody is waiting whom you can take." for answer in answers) == AGENTS - CALLERS
    shown = [agent.view()["holding"] for agent in agents]
    assert sorted(pop["id"] for pop in shown if pop) == sorted(callers)  # each agent's screen-pop agrees
    for pop, agent_name in ((pop, pop["agent"]) for pop in shown if pop):
        assert store.entry(pop["id"]).agent == agent_name
    taken_events = [event.entry_id for event in store.events_after(0, limit=10_000) if event.kind == "taken"]
    assert sorted(e for e in taken_events if e in callers) == sorted(callers)
