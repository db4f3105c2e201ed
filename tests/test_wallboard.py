"""The supervisors' wallboard: live in a real Chromium against a real `ivr serve`, closed to agents (403), and
its figures the report's own over today's queue and calls."""
from __future__ import annotations

import asyncio
import time
from datetime import datetime, timedelta

import pytest
import requests

from conftest import fresh_database
from ivr.console.feed import take_snapshot
from call_harness import VirtualClockLoop
from ivr.call_result import CallResult
from ivr.console.wallboard import CALLS_FRESH_S, Board, figures, shown
from ivr.records.store import CallRecords
from ivr.queue import QueueStore, open_queue
from ivr.reports.history import queue_row
from ivr.reports.kpis import kpis
from tests.console_helpers import AgentBrowser, Serve, escalation, settings_for

import playwright.sync_api as playwright_api  # noqa: E402 - installed by make setup; missing is a failure
CHROMIUM = "/usr/bin/chromium"
NOON = datetime(2026, 11, 30, 12, 0).astimezone()  # the console's local day


@pytest.fixture(scope="module")
def var_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("wallboard-var")


@pytest.fixture(scope="module")
def store(var_dir):
    with open_queue(settings_for(var_dir)) as queue:
        queue.add_agent("sam", "watch the whole floor", "en", role="supervisor")
        queue.add_agent("alice", "correct horse", "en,billing")
        yield queue


@pytest.fixture(scope="module")
def console(store, var_dir):
    with Serve(var_dir) as serve:
        yield serve


def test_the_wallboard_shows_a_caller_joining_the_queue_without_a_reload(console, store, tmp_path):
    store.set_agent_state("alice", "available")
    with playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_context(viewport={"width": 1920, "height": 1080}).new_page()
        page.goto(console.url + "login")
        page.get_by_label("Name").fill("sam")
        page.get_by_label("Password").fill("watch the whole floor")
        page.get_by_role("button", name="Sign in").click()
        page.get_by_role("link", name="Wallboard").click()
        assert page.locator("#waiting").inner_text() == "0"
        assert page.locator("#agents-available").inner_text() == "1"
        page.evaluate("window.notReloaded = true")

        entry = store.enqueue(escalation(summary="Wants to pay the bill."))
        playwright_api.expect(page.locator("#waiting")).to_have_text("1", timeout=10_000)  # pushed by the server
        assert page.evaluate("window.notReloaded") is True
        store.take(entry.id, "alice")
        playwright_api.expect(page.locator("#waiting")).to_have_text("0", timeout=10_000)
        assert page.locator("#agents-busy").inner_text() == "1"
        assert page.locator("#service-level").inner_text() == "100 %"  # taken within 20 s, today
        big = page.locator("#waiting").evaluate("node => parseFloat(getComputedStyle(node).fontSize)")
        assert big >= 48  # read from across the room
        page.screenshot(path=str(tmp_path / "wallboard.png"), full_page=True)
        print(f"screenshot: {tmp_path / 'wallboard.png'}")
        browser.close()
    store.wrap_up(entry.id, "alice", "resolved")


def test_an_agent_gets_403_on_the_wallboard_and_a_stranger_is_asked_to_sign_in(console):
    alice = AgentBrowser(console.url)
    assert alice.login("alice", "correct horse").ok
    for path in ("wallboard", "wallboard.json", "wallboard/events"):
        refused = alice.http.get(console.url + path, timeout=10)
        assert refused.status_code == 403, path
        assert "The wallboard is for supervisors" in refused.text
    assert "Wallboard" not in alice.http.get(console.url + "agent").text
    stranger = requests.get(console.url + "wallboard/events", timeout=10, allow_redirects=False)
    assert stranger.status_code == 401


@pytest.fixture(params=["sqlite", "postgresql"])
def queue(request, tmp_path):
    for url in fresh_database(request, tmp_path, "queue.db"):
        with QueueStore(url) as store:
            yield store


def call(outcome: str, started: datetime, junk=None, csat=None) -> dict:
    """A call record as the call records give it (only what the report reads)."""
    return {"call_id": f"call-{started.isoformat()}", "outcome": outcome, "task": None, "tasks": [],
            "escalation": {"reason": "caller_request"} if outcome == "escalated" else None, "seconds": 60.0,
            "started_at": started.isoformat(), "turns": [], "junk": junk, "csat": csat}


def test_the_figures_are_the_reports_over_today(queue):
    queue.add_agent("alice", "correct horse", "en,billing")
    queue.set_agent_state("alice", "available", now=NOON)
    yesterday = queue.enqueue(escalation(frustration=0.1), now=NOON - timedelta(days=1))
    queue.abandon(yesterday.id, now=NOON - timedelta(days=1))  # not today's: counts nowhere
    quick, slow, gone = (queue.enqueue(escalation(frustration=0.1), now=NOON - timedelta(minutes=m))
                         for m in (30, 20, 10))
    queue.take(quick.id, "alice", now=NOON - timedelta(minutes=30) + timedelta(seconds=5))
    queue.wrap_up(quick.id, "alice", "resolved", now=NOON - timedelta(minutes=25))
    queue.take(slow.id, "alice", now=NOON - timedelta(minutes=19))  # after 60 s: outside the service level
    queue.abandon(gone.id, now=NOON - timedelta(minutes=9))
    waiting = queue.enqueue(escalation(frustration=0.1), now=NOON - timedelta(seconds=95))
    calls = [call("self_served", NOON - timedelta(hours=2), csat={"asked": True, "score": 5, "by": "keypad"}),
             call("ended", NOON - timedelta(hours=1), junk="dead_air"),
             call("escalated", NOON - timedelta(minutes=31), csat={"asked": True, "score": 2, "by": "voice"}),
             call("self_served", NOON - timedelta(minutes=5))]
    asked = []

    def calls_since(since: datetime) -> list:
        asked.append(since)
        return [record for record in calls if datetime.fromisoformat(record["started_at"]) >= since]

    board = figures(queue, calls_since, take_snapshot(queue), NOON)
    assert asked == [NOON.replace(hour=0)]
    report = kpis(calls, [queue_row(entry) for entry in queue.entries(NOON.replace(hour=0))])
    assert (board["waiting"], board["longest_wait"], board["agents"]["busy"]) == (1, "1 min 35 s", 1)
    assert (board["service_level"], board["abandonment"]) == (report["service_level"], report["abandonment_rate"])
    assert board["service_level"] == pytest.approx(1 / 4) and board["abandonment"] == pytest.approx(1 / 4)
    assert board["containment"] == report["containment_rate"] == 3 / 4
    on_wall = shown(board)
    assert (on_wall["service_level_text"], on_wall["abandonment_text"], on_wall["containment_text"]) == \
        ("25 %", "25 %", "75 %")
    if "junk_calls" in report:  # the report's junk calls and CSAT (issue 17), once they are there
        assert (on_wall["junk_text"], on_wall["csat_text"], board["csat_answered"]) == ("1", "3.5", 2)
    without_records = shown(figures(queue, None, take_snapshot(queue), NOON))
    assert (without_records["containment_text"], without_records["junk_text"], without_records["csat_text"]) == \
        ("—", "—", "—")


def test_the_served_wallboard_counts_todays_calls_from_the_call_records(console, var_dir):
    """`ivr serve` gives its console the call records: containment, junk calls and CSAT are known on the wall
    (not "—"), counted from the calls this install recorded today."""
    now = datetime.now().astimezone()
    records = CallRecords(f"sqlite:///{var_dir / 'calls.db'}")
    try:
        for number, (outcome, junk, csat) in enumerate([("self_served", None, {"asked": True, "score": 4, "by": "keypad"}),
                                                        ("ended", "prank", None)]):
            records.save(CallResult(f"wall-{number}", outcome, None, None, ["Hello."], [], 30.0,
                                    started_at=now - timedelta(minutes=3 - number), ended_at=now,
                                    channel="sip", junk=junk, csat=csat))
    finally:
        records.close()
    sam = AgentBrowser(console.url)
    assert sam.login("sam", "watch the whole floor").ok
    deadline = time.monotonic() + 30  # today's calls on the wall are at most CALLS_FRESH_S old
    while True:
        board = sam.http.get(console.url + "wallboard.json", timeout=10).json()
        if board["calls"] and board["calls"] >= 2 or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert board["junk_calls"] >= 1 and board["calls"] >= 2
    assert board["containment"] is not None and board["csat_answered"] >= 1


def test_the_call_records_give_the_wall_the_reports_figures_without_reading_every_turn(queue):
    """The wall reads today's calls through CallRecords.outcomes (no turns); its figures are the report's over
    the full records, on both databases."""
    queue.add_agent("alice", "correct horse", "en,billing")
    queue.set_agent_state("alice", "available", now=NOON)
    taken = queue.enqueue(escalation(frustration=0.1), now=NOON - timedelta(minutes=30))
    queue.take(taken.id, "alice", now=NOON - timedelta(minutes=29))
    queue.wrap_up(taken.id, "alice", "resolved", now=NOON - timedelta(minutes=20))
    with CallRecords(queue.url()) as records:
        for number, (outcome, junk, csat) in enumerate([
                ("self_served", None, {"asked": True, "score": 5, "by": "keypad"}), ("ended", "prank", None),
                ("escalated", None, {"asked": True, "score": 2, "by": "voice"}), ("abandoned", None, None)]):
            at = NOON - timedelta(hours=1, minutes=number)
            records.save(CallResult(f"today-{number}", outcome, "balance", None, ["Hello."], [], 30.0, started_at=at,
                                    ended_at=at + timedelta(seconds=30), channel="sip", junk=junk, csat=csat))
        records.save(CallResult("yesterday", "escalated", None, None, ["Hello."], [], 30.0, channel="sip",
                                started_at=NOON - timedelta(days=1), ended_at=NOON - timedelta(days=1)))
        today = NOON.replace(hour=0)
        assert all("turns" not in call for call in records.outcomes(today))
        board = figures(queue, records.outcomes, take_snapshot(queue), NOON)
        report = kpis(records.calls(today), [queue_row(entry) for entry in queue.entries(today)])
    assert (board["calls"], board["containment"], board["junk_calls"]) == \
        (report["calls"], report["containment_rate"], report["junk_calls"]["calls"]) == (4, 3 / 4, 1)
    assert (board["csat"], board["csat_answered"]) == (report["csat"]["average"], report["csat"]["answered"]) == (3.5, 2)
    assert (board["service_level"], board["abandonment"]) == (report["service_level"], report["abandonment_rate"])


def test_every_open_wallboard_shares_one_board_and_todays_calls_are_read_at_most_every_few_seconds(queue):
    reads = []

    def calls_since(since: datetime) -> list:
        reads.append(asyncio.get_running_loop().time())
        return []

    async def walls():
        board, snapshot = Board(queue, calls_since), take_snapshot(queue)
        boards = await asyncio.gather(*(board.of(snapshot) for _ in range(8)))  # eight wall screens, one update
        assert all(shown is boards[0] for shown in boards) and len(reads) == 1
        queue.enqueue(escalation(frustration=0.1))
        changed = await board.of(take_snapshot(queue))  # the next queue change: the queue is fresh at once ...
        assert (changed["waiting"], len(reads)) == (1, 1)  # ... today's calls are not read again yet
        await asyncio.sleep(CALLS_FRESH_S)
        await asyncio.gather(*(board.of() for _ in range(8)))  # quiet: the calls move on, read once for all
        assert reads == [0.0, CALLS_FRESH_S]

    loop = VirtualClockLoop()
    try:
        loop.run_until_complete(walls())
    finally:
        loop.close()
