"""`ivr serve` as a process: starting, stopping, a busy port, kill -9, and the manager's /metrics."""
from __future__ import annotations

import json
import socket

import pytest
from prometheus_client.parser import text_string_to_metric_families

from ivr.queue import open_queue
from ivr.records import open_records
from tests.conftest import ivr_command
from tests.console_helpers import AgentBrowser, EventStream, Serve, escalation, settings_for


@pytest.fixture
def var_dir(tmp_path):
    return tmp_path / "var"


@pytest.fixture
def store(var_dir):
    with open_queue(settings_for(var_dir)) as queue:
        queue.add_agent("alice", "correct horse", "en,billing")
        yield queue


def test_serve_says_where_it_listens_and_stops_cleanly_on_sigterm(var_dir, store):
    serve = Serve(var_dir).start()
    assert serve.url.startswith("http://127.0.0.1:")
    agent = AgentBrowser(serve.url)
    assert agent.login("alice", "correct horse").ok
    with EventStream(agent, "events") as feed:  # an open live feed does not hold the stop up
        feed.until(lambda kind, data: kind == "queue")
        status, stderr = serve.stop()
    assert status == 0 and "stopped" in stderr and "Traceback" not in stderr


def test_a_busy_port_is_one_clear_line(var_dir, store):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = ivr_command("serve", "--port", port, env={"IVR_VAR": str(var_dir)}, timeout=60)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"ivr serve: cannot listen on 127.0.0.1:{port}: Address already in use (another ivr serve? choose another "
        f"with --port)"]


def test_after_kill_9_every_queued_caller_is_there_once(var_dir, store):
    waiting = [store.enqueue(escalation(summary=f"caller {n}")).id for n in range(3)]
    callback = store.enqueue(escalation(summary="call me back")).id
    store.request_callback(callback, "+1 312 555 0199")
    serve = Serve(var_dir).start()
    agent = AgentBrowser(serve.url)
    assert agent.login("alice", "correct horse").ok
    assert len(agent.view()["queue"]) == 4
    serve.kill()

    with Serve(var_dir) as again:
        agent.url = again.url  # the same session cookie: one install secret, so sessions outlive restarts
        rows = agent.view()["queue"]
        assert sorted(row["id"] for row in rows) == sorted(waiting + [callback])
        assert [row["callback_number"] for row in rows if row["callback"]] == ["+13125550199"]
        with EventStream(agent, "events") as feed:
            kind, data = feed.until(lambda kind, data: kind == "queue")[-1]
        html = json.loads(data)["html"]
        assert all(html.count(f'id="entry-{entry_id}"') == 1 for entry_id in waiting + [callback])


def test_metrics_are_the_stores_figures(var_dir, store):
    from ivr.call_result import CallResult

    store.add_agent("bob", "battery staple", "en,billing")
    for name in ("alice", "bob"):
        store.set_agent_state(name, "available")
    first, second, third, fourth = (store.enqueue(escalation(reason=reason)).id
                                    for reason in ("caller_request", "caller_request", "no_match", "frustration"))
    store.take(first, "alice")
    store.take(second, "bob")
    store.abandon(third)
    store.request_callback(fourth, "3125550100")
    store.enqueue(escalation(reason="no_input"))
    with open_records(settings_for(var_dir)) as records:
        for number, outcome in enumerate(("self_served", "self_served", "self_served", "escalated")):
            records.save(CallResult(call_id=f"call-{number}", outcome=outcome, task=None, escalation=None,
                                    greeting=[], turns=[], seconds=30.0))
        counts = records.counts()

    with Serve(var_dir) as serve:
        scraped = AgentBrowser(serve.url).http.get(serve.url + "metrics")
    expected = store.metrics()
    assert scraped.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    samples = {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
               for family in text_string_to_metric_families(scraped.text) for sample in family.samples}

    def value(name, **labels):
        return samples[(name, tuple(sorted(labels.items())))]

    assert value("ivr_queue_waiting") == expected["waiting"] == 1
    assert value("ivr_queue_callbacks_pending") == expected["callbacks_pending"] == 1
    assert value("ivr_queue_longest_wait_seconds") == pytest.approx(expected["longest_wait_s"], abs=3)
    assert value("ivr_queue_taken_total") == expected["taken_total"] == 2
    assert value("ivr_queue_abandoned_total") == expected["abandoned_total"] == 1
    assert value("ivr_queue_answered_wait_seconds_count") == 2
    assert value("ivr_queue_answered_wait_seconds_sum") == pytest.approx(sum(expected["wait_seconds"]))
    assert value("ivr_queue_answered_wait_seconds_bucket", le="+Inf") == 2
    for reason, count in expected["escalations_by_reason"].items():
        assert value("ivr_escalations_total", reason=reason) == count
    assert value("ivr_escalations_total", reason="caller_request") == 2
    assert value("ivr_agents", state="busy") == 2 and value("ivr_agents", state="available") == 0
    assert value("ivr_calls_total", outcome="self_served") == counts["self_served"] == 3
    assert value("ivr_calls_contained_total") == counts["contained"] == 3
    assert value("ivr_containment_ratio") == pytest.approx(0.75)
