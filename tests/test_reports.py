"""`ivr report` over a generated history with known answers, written through the real stores into real SQLite.

Every expected figure is computed here from what the generator decided, not by the report's own code. The
HTML page is opened in a real headless Chromium: its plots decode, it asks the network for nothing.
"""
from __future__ import annotations

import json
import random
import shutil
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import List, Optional

import pytest

from conftest import ivr_command
from ivr.call_result import CallResult
from ivr.events import Escalation, Turn
from ivr.queue import QueueStore
from ivr.records import CallRecords

T0 = datetime(2026, 11, 10, 0, 0, tzinfo=timezone.utc)
DAYS = 10
CALLS = 320
SINCE = "2026-11-15"
PROMPTS = ("utter_greet", "utter_ask_account_number", "utter_ask_pin", "utter_ask_amount", "utter_ask_zip_code",
           "utter_ask_street", "utter_confirm_payment")
TASKS = (None, "balance", "bill_pay", "address_change")
REASONS = ("caller_request", "no_input", "no_match", "auth_failed", "frustration", "payment_declined")
OUTCOMES = ("self_served", "escalated", "abandoned", "ended")
TASK_NAMES = {"bill_pay": "bill payment", "balance": "balance enquiry", "address_change": "address change"}
# What a supervisor reads for each prompt: voice.yml's `name:`, else the prompt's own words.
PROMPT_NAMES = {"utter_greet": "how can I help?", "utter_ask_account_number": "account number", "utter_ask_pin": "PIN",
                "utter_ask_amount": "amount", "utter_ask_zip_code": "new ZIP code", "utter_ask_street": "street",
                "utter_confirm_payment": "confirm payment"}
FATES = ("wrapped_up", "taken", "abandoned", "callback", "callback_returned", "waiting", "not_queued")
SCREENSHOT_COPY = Path("/tmp/ivr-report-screenshot.png")  # kept for a person to look at


@dataclass
class Truth:
    """What the generator decided for one call (and its queue entry, if any)."""
    started: datetime
    outcome: str
    task: Optional[str]
    seconds: float
    reason: Optional[str]
    turns: List[Turn]
    tasks: List[dict] = field(default_factory=list)  # empty: a record from before tasks were kept
    fate: Optional[str] = None
    enqueued: Optional[datetime] = None
    wait: Optional[float] = None  # enqueued -> taken, seconds
    handle: Optional[float] = None  # taken -> wrapped up, seconds
    callback: bool = False


@dataclass
class History:
    var: Path
    truths: List[Truth] = field(default_factory=list)


def random_turns(rng: random.Random) -> List[Turn]:
    turns = []
    for _ in range(rng.randint(0, 6)):
        prompt, shape = rng.choice(PROMPTS), rng.random()
        if shape < 0.12:
            turns.append(Turn(kind="no_input", prompt=prompt, bot=["Sorry, I didn't hear anything."]))
        elif shape < 0.20:
            turns.append(Turn(said="mumble", prompt=prompt, heard="", bot=["Sorry?"]))  # nothing recognised
        elif shape < 0.32:
            turns.append(Turn(said="banana", prompt=prompt, heard="banana phone", intent="nlu_fallback",
                              confidence=0.31, bot=["Sorry, I didn't get that."]))
        elif shape < 0.38:
            turns.append(Turn(said="weather", prompt=prompt, heard="what's the weather", intent="out_of_scope",
                              confidence=0.7, bot=["I can't help with that."]))
        elif shape < 0.55:
            turns.append(Turn(said="dtmf:1234#", kind="dtmf", prompt=prompt, heard="1234", intent="inform",
                              confidence=1.0, bot=["Thanks."]))
        else:
            turns.append(Turn(said="pay my bill", prompt=prompt, heard="pay my bill", intent="pay_bill",
                              confidence=round(rng.uniform(0.5, 1.0), 3), bot=["Sure."],
                              latency={"asr": 0.02, "dialog": 0.09}))
    return turns


def random_tasks(rng: random.Random, outcome: str, task: Optional[str]) -> List[dict]:
    """The tasks a call started: its last one, completed only when self-served, sometimes after one it
    left (cancelled or switched from), sometimes after another it finished; a fifth keep no list."""
    if task is None or rng.random() < 0.2:
        return []
    shape, other = rng.random(), rng.choice([t for t in TASKS[1:] if t != task])
    before = [{"task": other, "completed": False}] if shape < 0.25 else \
        [{"task": other, "completed": True}] if shape < 0.4 and outcome == "self_served" else []
    return [*before, {"task": task, "completed": outcome == "self_served"}]


def generate(var: Path, rng: random.Random) -> History:
    history = History(var)
    records = CallRecords(f"sqlite:///{var / 'calls.db'}")
    queue = QueueStore(f"sqlite:///{var / 'queue.db'}")
    queue.add_agent("alice", "a long password", ["en", "billing", "address"])
    queue.set_agent_state("alice", "available", now=T0)
    try:
        for number in range(CALLS):
            started = T0 + timedelta(milliseconds=rng.randrange(DAYS * 86_400_000))
            outcome = rng.choices(OUTCOMES, weights=(45, 35, 12, 8))[0]
            task = rng.choice(TASKS) if outcome != "self_served" else rng.choice(TASKS[1:])
            truth = Truth(started, outcome, task, rng.randrange(3_000, 600_000) / 1000,
                          rng.choice(REASONS) if outcome == "escalated" else None, random_turns(rng),
                          random_tasks(rng, outcome, task))
            call_id = f"call-{number:04d}"
            escalation = Escalation(truth.reason, summary=f"Caller {number} wants a person.", task=task,
                                    frustration=round(rng.random(), 2), caller_number=f"+1555{number:07d}",
                                    call_id=call_id, channel="sip") if truth.reason else None
            entry, queue_outcome = None, None
            if escalation:
                truth.fate = rng.choice(FATES)
                if truth.fate != "not_queued":
                    entry, queue_outcome = queue_history(queue, rng, truth, escalation)
            records.save(CallResult(call_id, outcome, task, escalation, ["Hello, how can I help?"], truth.turns,
                                    truth.seconds, started_at=started,
                                    ended_at=started + timedelta(seconds=truth.seconds), channel="sip",
                                    caller_number=f"+1555{number:07d}", queue_entry=entry,
                                    queue_outcome=queue_outcome, tasks=truth.tasks))
            history.truths.append(truth)
    finally:
        records.close()
        queue.close()
    return history


def queue_history(queue: QueueStore, rng: random.Random, truth: Truth, escalation: Escalation):
    """Put the caller through the real queue as their fate says; returns (entry id, the call's queue outcome)."""
    truth.enqueued = truth.started + timedelta(seconds=truth.seconds)
    entry = queue.enqueue(escalation, now=truth.enqueued).id
    # Some waits sit exactly on the service-level threshold: "within 20 s" includes 20 s.
    wait = 20.0 if rng.random() < 0.1 else rng.randrange(0, 150_000) / 1000
    at = truth.enqueued + timedelta(seconds=wait)
    fate = truth.fate
    if fate == "waiting":
        return entry, "waiting"
    if fate == "abandoned":
        queue.abandon(entry, now=at)
        return entry, "abandoned"
    if fate.startswith("callback"):
        truth.callback = True
        queue.request_callback(entry, "+1 312 555 0100", now=at)
        if fate == "callback":
            return entry, "callback"
        wait += rng.randrange(60_000, 1_800_000) / 1000  # called back later
        at = truth.enqueued + timedelta(seconds=wait)
    truth.wait = wait
    wraps_up = fate in ("wrapped_up", "callback_returned")
    agent = "alice" if wraps_up else _agent_who_keeps(queue, entry)  # an agent holds one caller at a time
    queue.take(entry, agent, now=at)
    if wraps_up:
        truth.handle = rng.randrange(30_000, 900_000) / 1000
        queue.wrap_up(entry, agent, "resolved", now=at + timedelta(seconds=truth.handle))
    return entry, "callback" if truth.callback else "taken"


def _agent_who_keeps(queue: QueueStore, entry: int) -> str:
    """A colleague of alice's who takes this caller and is still with them when the history ends."""
    name = f"keeps-{entry}"
    queue.add_agent(name, "a long password", ["en", "billing", "address"])
    queue.set_agent_state(name, "available", now=T0)
    return name


@pytest.fixture(scope="module")
def history(tmp_path_factory) -> History:
    return generate(tmp_path_factory.mktemp("var"), random.Random(20261125))


def run_report(history: History, *args: str):
    return ivr_command("report", *args, env={"IVR_VAR": str(history.var), "IVR_DATABASE_URL": ""}, timeout=120)


def expected(truths: List[Truth], since: Optional[datetime] = None) -> dict:
    """Every figure, straight from the generator's decisions."""
    calls = [t for t in truths if since is None or t.started >= since]
    queued = [t for t in truths if t.enqueued and (since is None or t.enqueued >= since)]
    outcomes = Counter(t.outcome for t in calls)
    started = [s for t in calls for s in (t.tasks or ([{"task": t.task, "completed": t.outcome == "self_served"}]
                                                      if t.task else []))]
    tasks = {}
    for name in sorted({s["task"] for s in started}):
        attempted = [s for s in started if s["task"] == name]
        done = sum(s["completed"] for s in attempted)
        tasks[name] = {"name": TASK_NAMES[name], "attempted": len(attempted), "completed": done,
                       "completion_rate": done / len(attempted)}
    on_line = [t for t in queued if not t.callback]  # speed of answer etc. are about callers on the line
    taken = [t for t in on_line if t.wait is not None]
    returned = [t for t in queued if t.callback and t.wait is not None]
    wrapped = [t for t in queued if t.handle is not None]
    prompts = {}
    for turn in (turn for t in calls for turn in t.turns):
        counts = prompts.setdefault(turn.prompt, {"prompt": turn.prompt, "name": PROMPT_NAMES[turn.prompt],
                                                  "no_input": 0, "no_match": 0, "turns": 0})
        counts["turns"] += 1
        if turn.kind == "no_input":
            counts["no_input"] += 1
        elif turn.intent in ("nlu_fallback", "out_of_scope") or turn.heard == "":
            counts["no_match"] += 1
    failing = sorted((dict(p, failure_rate=(p["no_input"] + p["no_match"]) / p["turns"]) for p in prompts.values()
                      if p["no_input"] + p["no_match"]), key=lambda p: (-p["no_input"] - p["no_match"], p["prompt"]))
    bounds = [(0, 10), (10, 20), (20, 30), (30, 60), (60, 120), (120, None)]
    days = Counter((t.started.date().isoformat(), t.outcome == "escalated") for t in calls)
    return {
        "calls": len(calls),
        "outcomes": {o: outcomes[o] for o in OUTCOMES},
        "contained": len(calls) - outcomes["escalated"],
        "containment_rate": (len(calls) - outcomes["escalated"]) / len(calls),
        "abandoned_in_bot": outcomes["abandoned"],
        "abandoned_in_bot_rate": outcomes["abandoned"] / len(calls),
        "task_completion_rate": sum(s["completed"] for s in started) / len(started),
        "tasks": tasks,
        "escalations_by_reason": dict(Counter(t.reason for t in calls if t.outcome == "escalated").most_common()),
        "bot_handle_time_s": sum(t.seconds for t in calls) / len(calls),
        "calls_per_day": [{"day": day, "contained": days[(day, False)], "escalated": days[(day, True)]}
                          for day in sorted({day for day, _ in days})],
        "queued": len(queued),
        "answered": len(taken),
        "abandoned_in_queue": sum(t.fate == "abandoned" for t in queued),
        "abandonment_rate": sum(t.fate == "abandoned" for t in queued) / len(on_line),
        "average_speed_of_answer_s": sum(t.wait for t in taken) / len(taken),
        "service_level": sum(t.wait <= 20 for t in taken) / len(on_line),
        "service_level_seconds": 20.0,
        "agent_handle_time_s": sum(t.handle for t in wrapped) / len(wrapped),
        "callbacks": {"requested": sum(t.callback for t in queued),
                      "returned": sum(t.fate == "callback_returned" for t in queued),
                      "waiting": sum(t.fate == "callback" for t in queued),
                      "average_wait_s": sum(t.wait for t in returned) / len(returned)},
        "answer_waits": [{"over_s": low, "up_to_s": high,
                          "answered": sum((low == 0 or t.wait > low) and (high is None or t.wait <= high)
                                          for t in taken)} for low, high in bounds],
        "prompts": failing[:10],
    }


def assert_figures(report: dict, want: dict) -> None:
    glossary = report.pop("glossary")
    assert {"containment", "task completion", "abandoned in the bot", "abandoned in the queue"} <= set(glossary)
    assert all(len(meaning) > 20 for meaning in glossary.values())
    assert set(report) - {"since"} == set(want)
    for name, value in want.items():
        if isinstance(value, float):
            assert report[name] == pytest.approx(value, rel=1e-12), name
        elif name == "tasks":
            assert report[name] == value and list(report[name]) == list(value)
        elif name == "prompts":
            assert [{**p, "failure_rate": pytest.approx(p["failure_rate"])} for p in value] == report[name]
        elif name == "callbacks":  # its average is a float summed in another order
            assert report[name] == {**value, "average_wait_s": pytest.approx(value["average_wait_s"], rel=1e-12)}
        elif name == "escalations_by_reason":
            assert report[name] == value
            assert list(report[name].values()) == sorted(value.values(), reverse=True), "most frequent first"
        else:
            assert report[name] == value, name


def test_every_figure_matches_the_generated_history(history):
    result = run_report(history, "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["since"] is None
    want = expected(history.truths)
    # The generator covered what the figures distinguish.
    assert all(want["outcomes"].values()) and len(want["tasks"]) == 3 and len(want["escalations_by_reason"]) == 6
    assert any(len(t.tasks) == 2 and not t.tasks[0]["completed"] for t in history.truths)  # a task left for another
    assert any(t.task and not t.tasks for t in history.truths)  # a record from before tasks were kept
    assert want["callbacks"]["returned"] and want["callbacks"]["waiting"] and want["abandoned_in_queue"]
    assert any(t.wait == 20.0 for t in history.truths) and want["calls_per_day"][0]["day"] == "2026-11-10"
    assert_figures(report, want)


def test_since_keeps_only_calls_and_queue_entries_from_then_on(history):
    result = run_report(history, "--json", "--since", SINCE)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    since = datetime.fromisoformat(SINCE).replace(tzinfo=timezone.utc)
    assert report["since"] == since.isoformat()
    want = expected(history.truths, since)
    assert 0 < want["calls"] < len(history.truths)
    assert_figures(report, want)


def test_the_html_report_shows_its_plots_in_a_real_browser_without_the_network(history, tmp_path):
    from playwright.sync_api import sync_playwright

    page_file = tmp_path / "kpis.html"
    result = run_report(history, "--out", page_file)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"report: {page_file} ({CALLS} calls, {expected(history.truths)['queued']} queued)"
    want = expected(history.truths)
    requests = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1100, "height": 900})
            page.on("request", lambda request: requests.append(request.url))
            page.goto(page_file.as_uri())
            page.wait_for_load_state("load")
            images = page.eval_on_selector_all(
                "img", "images => images.map(i => ({ok: i.complete && i.naturalWidth > 0, w: i.naturalWidth, "
                       "alt: i.alt}))")
            text = page.inner_text("body")
            screenshot = tmp_path / "report.png"
            page.screenshot(path=str(screenshot), full_page=True)
        finally:
            browser.close()
    assert [image["alt"] for image in images] == [
        "calls by outcome", "calls per day", "completion per task", "escalations by reason", "waits for an agent",
        "no-input and no-match by prompt"]
    assert all(image["ok"] and image["w"] >= 400 for image in images), images
    assert requests == [page_file.as_uri()], "the page fetched something besides itself"
    assert f"{want['containment_rate'] * 100:.1f} %" in text and f"{want['service_level'] * 100:.1f} %" in text
    assert want["prompts"][0]["name"] in text and "utter_" not in text
    for term in ("containment", "task completion", "abandoned in the bot", "abandoned in the queue"):
        assert term in text.lower(), term
    assert f"{want['task_completion_rate'] * 100:.1f} %" in text
    assert screenshot.stat().st_size > 50_000
    shutil.copy(screenshot, SCREENSHOT_COPY)


def test_json_and_out_together_print_the_figures_and_write_the_page(history, tmp_path):
    result = run_report(history, "--json", "--since", "2026-11-19T12:00Z", "--out", tmp_path / "r.html")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["since"] == "2026-11-19T12:00:00+00:00"
    assert (tmp_path / "r.html").read_text().startswith("<!DOCTYPE html>")


def test_an_empty_history_says_so(tmp_path):
    env = {"IVR_VAR": str(tmp_path), "IVR_DATABASE_URL": ""}
    page = ivr_command("report", "--out", tmp_path / "r.html", env=env)
    assert (page.returncode, page.stdout, page.stderr) == (1, "", "ivr report: no calls recorded yet: nothing to report\n")
    assert not (tmp_path / "r.html").exists()
    figures = ivr_command("report", "--json", "--since", "2026-01-01", env=env)
    assert figures.returncode == 0
    assert figures.stderr == "ivr report: no calls recorded since 2026-01-01T00:00:00+00:00: nothing to report\n"
    report = json.loads(figures.stdout)
    assert (report["calls"], report["queued"], report["containment_rate"], report["service_level"]) == (0, 0, None, None)


def test_a_bad_date_is_one_line(tmp_path):
    result = ivr_command("report", "--since", "2026-02-30", env={"IVR_VAR": str(tmp_path), "IVR_DATABASE_URL": ""})
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == "ivr: --since '2026-02-30' is not a date: use YYYY-MM-DD or YYYY-MM-DDTHH:MM (UTC)\n"
