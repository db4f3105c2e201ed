"""Upset callers through a real `ivr serve` console: who may take them, and the screen-pop's warning line.
The warning's wording from what the call knows is checked on the handoff itself."""
from __future__ import annotations

import re
from datetime import timedelta

import pytest

from ivr.events import Escalation, TranscriptLine
from ivr.queue import open_queue
from ivr.queue.handoff import upset_warning
from ivr.queue.routing import CareRules
from ivr.storage import now as utc_now
from tests.console_helpers import AgentBrowser, Serve, escalation, settings_for

CHARGED_TWICE = (TranscriptLine("bot", "How can I help you?"),
                 TranscriptLine("caller", "You charged me twice this month, this is ridiculous"),
                 TranscriptLine("bot", "I can help with your bill."),
                 TranscriptLine("caller", "I want a real person"),
                 TranscriptLine("caller", "agent"),
                 TranscriptLine("caller", "let me talk to a human please"))


def test_the_warning_says_what_upset_the_caller_in_plain_words():
    upset_at = CareRules().upset_at
    upset = Escalation(reason="frustration", frustration=0.8, transcript=CHARGED_TWICE,
                       slots={"failed identification tries": "2"})
    assert upset_warning(upset, upset_at) == ('Caller is upset: said "You charged me twice this month, this is ridiculous", '
                                    'asked for a person three times, failed identification twice')
    declined = Escalation(reason="payment_declined", frustration=0.7,
                          transcript=(TranscriptLine("caller", "(silence)"), TranscriptLine("caller", "(silence)")))
    assert upset_warning(declined, upset_at) == "Caller is upset: went silent twice, the card was declined"
    assert upset_warning(Escalation(reason="frustration", frustration=0.9), upset_at) == "Caller is upset."
    assert upset_warning(Escalation(reason="caller_request", frustration=0.5, transcript=CHARGED_TWICE),
                         upset_at) is None


@pytest.fixture(scope="module")
def var_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("routing-var")


@pytest.fixture(scope="module")
def store(var_dir):
    with open_queue(settings_for(var_dir)) as queue:
        queue.add_agent("bob", "battery staple", "en,billing")
        queue.add_agent("carol", "calm waters run deep", "en,billing,deescalation")
        yield queue


@pytest.fixture(scope="module")
def console(store, var_dir):
    with Serve(var_dir) as serve:
        yield serve


def agent(console, name: str, password: str) -> AgentBrowser:
    browser = AgentBrowser(console.url)
    assert browser.login(name, password).ok
    assert browser.post("agent/state", state="available").ok
    return browser


def test_an_upset_caller_waits_for_the_deescalation_agent_then_goes_to_anyone(console, store):
    bob, carol = agent(console, "bob", "battery staple"), agent(console, "carol", "calm waters run deep")
    upset = store.enqueue(escalation(transcript=CHARGED_TWICE, frustration=0.8)).id
    row = next(row for row in bob.view()["queue"] if row["id"] == upset)
    assert row["kept_for_care"] and row["missing_skills"] == ["deescalation"]  # bob sees why he cannot take them
    refused = bob.post("queue/take-next").json()
    assert refused == {"ok": True, "message": "Nobody is waiting whom you can take.", "holding": None}
    kept = bob.post(f"queue/{upset}/take")
    assert kept.status_code == 409 and kept.json()["message"].startswith(
        "That caller is upset and waits a few seconds more for an agent trained in de-escalation.")
    assert carol.post("queue/take-next").json()["holding"] == upset

    a_while_ago = utc_now() - timedelta(seconds=60)  # past the 30 s kept for carol, who is busy now
    waited = store.enqueue(escalation(transcript=CHARGED_TWICE, frustration=0.8), now=a_while_ago).id
    assert not next(row for row in bob.view()["queue"] if row["id"] == waited)["kept_for_care"]
    assert bob.post("queue/take-next").json()["holding"] == waited
    for name, entry_id in (("carol", upset), ("bob", waited)):
        store.wrap_up(entry_id, name, "resolved")


def test_the_screen_pop_opens_with_the_warning_line(console, store):
    carol = agent(console, "carol", "calm waters run deep")
    upset = store.enqueue(escalation(transcript=CHARGED_TWICE, frustration=0.8)).id
    assert carol.post(f"queue/{upset}/take").ok
    warning = ('Caller is upset: said "You charged me twice this month, this is ridiculous", '
               'asked for a person three times, the card was declined')
    assert carol.view()["holding"]["warning"] == warning
    page = carol.http.get(console.url + "agent").text
    pop = page[page.index('id="screen-pop"'):]
    assert re.search(r'<p class="upset-warning" id="pop-warning" role="alert">([^<]*)</p>', pop).group(1) == \
        warning.replace('"', "&#34;")
    assert pop.index('id="pop-warning"') < min(pop.index(f'id="{field}"') for field in ("pop-title", "pop-summary",
                                                                                        "pop-reason", "pop-account"))
    store.wrap_up(upset, "carol", "resolved")
    calm = store.enqueue(escalation(frustration=0.65)).id  # below voice.yml's frustration threshold (0.7)
    assert carol.post(f"queue/{calm}/take").ok
    assert carol.view()["holding"]["warning"] is None
    assert carol.view()["holding"]["frustration_text"] == "impatient"
    assert "pop-warning" not in carol.http.get(console.url + "agent").text
    store.wrap_up(calm, "carol", "resolved")
