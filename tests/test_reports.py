"""`ivr report` over a generated history with known answers, written through the real stores into real SQLite.

Every expected figure is computed here from what the generator decided, not by the report's own code. The
HTML page is opened in a real headless Chromium: its plots decode, it asks the network for nothing.
"""
from __future__ import annotations

import json
import random
import shutil
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path
from statistics import mean
from typing import List, Optional

import pytest

from conftest import ivr_command
from report_history import CALLS, OUTCOMES, History, Truth, generate

SINCE = "2026-11-15"
TASK_NAMES = {"bill_pay": "bill payment", "balance": "balance enquiry", "address_change": "address change"}
# What a supervisor reads for each prompt: voice.yml's `name:`, else the prompt's own words.
PROMPT_NAMES = {"utter_greet": "how can I help?", "utter_ask_account_number": "account number", "utter_ask_pin": "PIN",
                "utter_ask_amount": "amount", "utter_ask_zip_code": "new ZIP code", "utter_ask_street": "street",
                "utter_confirm_payment": "confirm payment"}
WINDOW = timedelta(days=7)
SCREENSHOT_COPY = Path("/tmp/ivr-report-screenshot.png")  # kept for a person to look at


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
        "first_call_resolution": expected_resolution(truths, calls),
        "csat": expected_csat(calls),
        "junk_calls": expected_junk(calls, sum(t.handle for t in wrapped) / len(wrapped)),
    }


def same_need(a: Truth, b: Truth) -> bool:
    """The same caller (a number or an account in common) about the same task."""
    return bool(a.task) and a.task == b.task and bool(
        (a.number and a.number == b.number) or (a.account and a.account == b.account))


def handler(t: Truth) -> Optional[str]:
    if not t.task or t.junk:
        return None
    if t.outcome != "escalated":
        return "bot"
    return "agents" if t.fate in ("wrapped_up", "callback_returned") else None


def expected_resolution(truths: List[Truth], calls: List[Truth]) -> dict:
    """Straight from the definition: settled by the call, and no call from the same caller about the same task
    in the 7 days after it started."""
    def settled(t: Truth) -> bool:
        return t.outcome == "self_served" if handler(t) == "bot" else t.disposition == "resolved"

    def again(t: Truth) -> bool:
        return any(same_need(t, u) and timedelta(0) < u.started - t.started <= WINDOW for u in truths)

    repeats = [t for t in calls if any(same_need(t, u) and timedelta(0) < t.started - u.started <= WINDOW
                                       for u in truths)]
    counts = {}
    for who in ("bot", "agents"):
        mine = [t for t in calls if handler(t) == who]
        resolved = sum(settled(t) and not again(t) for t in mine)
        counts[who] = {"calls": len(mine), "resolved": resolved, "rate": resolved / len(mine)}
    return {"window_days": 7.0, **counts, "repeat_calls": len(repeats),
            "repeat_callers": len({t.number or t.account for t in repeats})}


def expected_csat(calls: List[Truth]) -> dict:
    def survey(of: List[Truth]) -> dict:
        scores = [t.survey["score"] for t in of if t.survey["score"] is not None]
        return {"average": mean(scores), "asked": len(of), "answered": len(scores),
                "response_rate": len(scores) / len(of)}
    asked = [t for t in calls if t.survey]
    return {**survey(asked), "bot": survey([t for t in asked if not t.survey.get("agent")]),
            "agents": survey([t for t in asked if t.survey.get("agent")]),
            "by_task": {task: {"name": TASK_NAMES[task], **survey([t for t in asked if t.task == task])}
                        for task in sorted({t.task for t in asked})},
            "by_agent": {agent: survey([t for t in asked if t.survey.get("agent") == agent])
                         for agent in sorted({t.survey["agent"] for t in asked if t.survey.get("agent")})}}


def expected_junk(calls: List[Truth], handle_s: float) -> dict:
    counts = Counter(t.junk for t in calls if t.junk)
    total = counts["dead_air"] + counts["prank"]
    return {"dead_air": counts["dead_air"], "prank": counts["prank"], "calls": total,
            "agent_minutes_spared": total * handle_s / 60}


def approx(value):
    """`value` with every float inside it compared to 12 significant digits (summed in another order)."""
    if isinstance(value, float):
        return pytest.approx(value, rel=1e-12)
    if isinstance(value, dict):
        return {key: approx(item) for key, item in value.items()}
    return value


def assert_figures(report: dict, want: dict) -> None:
    glossary = report.pop("glossary")
    assert {"containment", "task completion", "abandoned in the bot", "abandoned in the queue",
            "first-call resolution", "CSAT", "junk calls", "agent minutes spared"} <= set(glossary)
    assert all(len(meaning) > 20 for meaning in glossary.values())
    assert set(report) - {"since"} == set(want)
    for name, value in want.items():
        if isinstance(value, float):
            assert report[name] == pytest.approx(value, rel=1e-12), name
        elif name == "tasks":
            assert report[name] == value and list(report[name]) == list(value)
        elif name == "prompts":
            assert [{**p, "failure_rate": pytest.approx(p["failure_rate"])} for p in value] == report[name]
        elif name in ("callbacks", "first_call_resolution", "csat", "junk_calls"):  # floats summed in another order
            assert report[name] == approx(value), name
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
    assert_covers_callers_coming_back(history.truths, want)
    assert_figures(report, want)


def assert_covers_callers_coming_back(truths: List[Truth], want: dict) -> None:
    """Repeat callers known by their number and by their account only, some back too late to count; both kinds
    of junk call; surveys answered by keypad and by voice, and skipped; every wrap-up the resolution reads."""
    pairs = [(a, b) for a in truths for b in truths if same_need(a, b) and a.started < b.started]
    assert any(b.started - a.started <= WINDOW and not (a.number and a.number == b.number) for a, b in pairs)
    assert any(b.started - a.started > WINDOW + timedelta(days=1) for a, b in pairs)
    fcr = want["first_call_resolution"]
    assert 0 < fcr["bot"]["rate"] < 1 and 0 < fcr["agents"]["rate"] < 1 and fcr["repeat_callers"] < fcr["repeat_calls"]
    assert want["junk_calls"]["dead_air"] and want["junk_calls"]["prank"]
    assert {(t.survey or {}).get("by") for t in truths} == {None, "keypad", "voice"}
    assert want["csat"]["answered"] < want["csat"]["asked"] and want["csat"]["agents"]["answered"]
    assert want["csat"]["by_agent"]["alice"]["answered"] < want["csat"]["by_agent"]["alice"]["asked"]
    assert {t.disposition for t in truths} >= {"resolved", "follow_up", "transferred"}


def test_since_keeps_only_calls_and_queue_entries_from_then_on(history):
    result = run_report(history, "--json", "--since", SINCE)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    since = datetime.fromisoformat(SINCE).replace(tzinfo=timezone.utc)
    assert report["since"] == since.isoformat()
    want = expected(history.truths, since)
    assert 0 < want["calls"] < len(history.truths)
    # A call in the period repeats one from before it: it counts as a repeat call.
    assert any(same_need(a, b) and a.started < since <= b.started <= a.started + WINDOW
               for a in history.truths for b in history.truths)
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
    fcr, csat, junk = want["first_call_resolution"], want["csat"], want["junk_calls"]
    assert f"{fcr['bot']['rate'] * 100:.1f} %" in text and f"{fcr['agents']['rate'] * 100:.1f} %" in text
    assert f"{fcr['repeat_calls']} repeat calls from {fcr['repeat_callers']} callers" in text
    assert f"{csat['average']:.2f}" in text and f"{csat['response_rate'] * 100:.1f} %" in text
    alice = csat["by_agent"]["alice"]  # the agent's own row: average, answers, asked, response rate
    assert (f"agent: alice\t{alice['average']:.2f}\t{alice['answered']}\t{alice['asked']}\t"
            f"{alice['response_rate'] * 100:.1f} %") in text
    assert f"{junk['agent_minutes_spared']:.1f} min" in text
    for term in ("first-call resolution", "csat", "junk calls", "agent minutes spared"):
        assert term in text.lower(), term
    assert "time with an agent is not counted" in text  # the bot's handle time: an operator reads what it leaves out
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


def test_a_survey_counts_for_whom_it_was_about_not_for_how_the_call_ended():
    """A caller asked about the bot who then asked for a person (and hung up on the agent) rated the bot: the
    agents' CSAT and response rate are only the surveys asked after an agent's call, which name the agent."""
    from ivr.reports.satisfaction import csat

    calls = [{"outcome": "escalated", "task": "balance", "csat": {"asked": True, "score": None, "by": None}},
             {"outcome": "escalated", "task": "balance",
              "csat": {"asked": True, "score": 5, "by": "keypad", "agent": "alice"}},
             {"outcome": "self_served", "task": "balance", "csat": {"asked": True, "score": 3, "by": "voice"}}]
    figures = csat(calls)
    assert (figures["bot"]["asked"], figures["bot"]["answered"], figures["bot"]["average"]) == (2, 1, 3)
    assert (figures["agents"]["asked"], figures["agents"]["response_rate"], figures["agents"]["average"]) == (1, 1.0, 5)
    assert figures["by_agent"] == {"alice": figures["agents"]}
