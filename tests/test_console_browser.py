"""The agents' console in a real headless Chromium against a real `ivr serve`: what an agent sees and does."""
from __future__ import annotations

import json
import os
import subprocess

import pytest

from ivr.events import TranscriptLine
from ivr.queue import open_queue
from tests.console_helpers import IVR, ROOT, Serve, escalation, settings_for

import playwright.sync_api as playwright_api  # noqa: E402 - installed by make setup; missing is a failure
CHROMIUM = "/usr/bin/chromium"


@pytest.fixture(scope="module")
def var_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("console-var")


@pytest.fixture(scope="module")
def store(var_dir):
    with open_queue(settings_for(var_dir)) as queue:
        queue.add_agent("alice", "correct horse", "en,billing")
        queue.add_agent("bob", "battery staple", "en,billing")
        yield queue


@pytest.fixture(scope="module")
def console(store, var_dir):
    with Serve(var_dir) as serve:
        yield serve


@pytest.fixture(scope="module")
def browser():
    with playwright_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    tab = context.new_page()
    tab.dialogs = []
    tab.on("dialog", lambda dialog: (tab.dialogs.append(dialog.message), dialog.dismiss()))
    yield tab
    context.close()


def sign_in(page, console, name="alice", password="correct horse"):
    page.goto(console.url + "login")
    page.get_by_label("Name").fill(name)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def test_wrong_password_or_unknown_name_shows_the_same_error(page, console):
    sign_in(page, console, password="wrong")
    assert page.locator("#login-error").inner_text() == "Wrong name or password."
    sign_in(page, console, name="nobody", password="wrong")
    assert page.locator("#login-error").inner_text() == "Wrong name or password."
    assert page.url.endswith("/login")


def test_agent_sees_a_caller_arrive_takes_them_and_wraps_up(page, console, store, tmp_path):
    sign_in(page, console)
    page.get_by_label("alice is").select_option("available")
    page.get_by_role("button", name="Set").click()
    assert page.locator("#agent-state").inner_text() == "Available"
    page.evaluate("window.notReloaded = true")

    hostile = "<script>alert(1)</script> my card is stolen"
    entry = store.enqueue(escalation(transcript=(TranscriptLine("bot", "How can I help you?"),
                                                 TranscriptLine("caller", hostile))))
    row = page.locator(f"#entry-{entry.id}")
    row.wait_for(timeout=10_000)  # pushed by the server: no reload
    assert page.evaluate("window.notReloaded") is True
    assert "card was declined" in row.inner_text() and "72 %" in row.inner_text()

    row.get_by_role("button", name="Take").click()
    pop = page.locator("#screen-pop")
    assert pop.is_visible()
    assert page.locator("#pop-summary").inner_text() == "Wants to pay the bill; the card was declined twice."
    assert page.locator("#pop-reason").inner_text() == "the card was declined"
    assert page.locator("#pop-task").inner_text() == "pay a bill"
    assert page.locator("#pop-account").inner_text() == "48…623 (identified)"
    assert page.locator("#pop-number").inner_text() == "+13125550100"
    assert "72 %" in page.locator("#pop-frustration").inner_text()
    assert page.locator("#pop-frustration meter").get_attribute("value") == "0.72"
    slots = page.locator("#pop-slots").inner_text()
    assert "$120.75" in slots and "ending 4242" in slots
    transcript = page.locator("#pop-transcript li").all_inner_texts()
    assert transcript == ["Bot: How can I help you?", f"Caller: {hostile}"]
    assert page.locator("#pop-transcript script").count() == 0
    assert page.locator("#agent-state").inner_text() == "Busy"
    assert page.locator("#pop-line").inner_text() == "Ringing your phone…"
    store.connected(entry.id)  # the phone line put the caller through to alice's phone
    playwright_api.expect(page.locator("#pop-line")).to_have_text("Connected to your phone",
                                                                   timeout=10_000)  # pushed, no reload
    page.screenshot(path=str(tmp_path / "screen-pop.png"), full_page=True)
    print(f"screenshot: {tmp_path / 'screen-pop.png'}")

    page.get_by_label("Disposition").select_option("resolved")
    page.get_by_role("button", name="Wrap up").click()
    assert page.locator(".flash").inner_text() == "Wrapped up: resolved."
    assert page.locator("#screen-pop").count() == 0
    assert page.locator("#agent-state").inner_text() == "Available"
    done = store.entry(entry.id)
    assert (done.state, done.agent, done.disposition) == ("wrapped_up", "alice", "resolved")
    assert page.dialogs == []  # the transcript's script never ran


def test_a_caller_someone_else_took_is_said_plainly_and_the_page_stays_usable(page, console, store):
    store.set_agent_state("bob", "available")
    page.route("**/events", lambda route: route.abort())  # a stale page: the live feed is cut
    sign_in(page, console)
    page.get_by_label("alice is").select_option("available")
    page.get_by_role("button", name="Set").click()
    entry = store.enqueue(escalation(summary="Wants their balance."))
    page.reload()
    store.take(entry.id, "bob")  # bob is faster

    page.locator(f"#entry-{entry.id}").get_by_role("button", name="Take").click()
    assert "Another agent took that caller first" in page.locator(".flash").inner_text()
    assert page.locator(f"#entry-{entry.id}").count() == 0
    assert page.get_by_role("button", name="Take next").is_enabled()
    assert page.locator("#screen-pop").count() == 0


def test_a_post_without_the_csrf_token_is_refused(page, console, store):
    sign_in(page, console)
    page.get_by_label("alice is").select_option("available")
    page.get_by_role("button", name="Set").click()
    refused = page.request.post(console.url + "queue/take-next", form={})
    assert refused.status == 403 and "security token (CSRF)" in refused.text()
    forged = page.request.post(console.url + "agent/state", form={"state": "offline", "csrf": "forged"})
    assert forged.status == 403
    assert store.agent("alice").state == "available"


def test_signing_out_sets_the_agent_offline_and_ends_the_session(page, console, store):
    sign_in(page, console)
    page.get_by_role("button", name="Sign out").click()
    assert page.locator(".flash").inner_text() == "Signed out; you are offline."
    assert store.agent("alice").state == "offline"
    page.goto(console.url + "agent")
    assert page.url.endswith("/login")


def test_a_scripted_caller_is_seen_taken_and_put_through_from_the_browser(page, console, store, var_dir, tmp_path):
    """The whole handoff: a caller's voice through the real pipeline, the queue, an agent's Chromium."""
    scenario = tmp_path / "caller.yml"
    scenario.write_text(
        'name: a caller asks for a person mid-payment and waits on hold\n'
        'caller: {voice: "flite:slt", channel: phone, number: "+13125550177"}\n'
        'turns:\n'
        '  - say: "I want to pay my bill."\n'
        '    expect: {intent: pay_bill, bot_says: "account number"}\n'
        '  - say: "Let me talk to a real person."\n'
        '    expect: {intent: request_agent, bot_says: "in line"}\n'
        '  - hold: 90\n'
        'expect: {outcome: escalated, reason: caller_request, queue: taken, summary: "wants to pay a bill"}\n')
    env = dict(os.environ, IVR_VAR=str(var_dir))
    env.pop("IVR_DATABASE_URL", None)
    subprocess.run([str(IVR), "db", "seed"], env=env, cwd=ROOT, check=True, capture_output=True, timeout=120)
    caller = subprocess.Popen([str(IVR), "simulate", str(scenario), "--json"], env=env, cwd=ROOT,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        sign_in(page, console)
        page.get_by_label("alice is").select_option("available")
        page.get_by_role("button", name="Set").click()
        page.evaluate("window.notReloaded = true")
        row = page.locator("#queue tr", has_text="wants to pay a bill")
        row.wait_for(timeout=90_000)  # the caller's words, heard and queued by another process, pushed here
        assert page.evaluate("window.notReloaded") is True
        row.get_by_role("button", name="Take").click()
        assert "wants to pay a bill; asked for a person" in page.locator("#pop-summary").inner_text()
        assert page.locator("#pop-number").inner_text() == "+13125550177"
        transcript = " ".join(page.locator("#pop-transcript li").all_inner_texts()).lower()
        assert "caller: i want to pay my bill" in transcript and "account number" in transcript
        out, err = caller.communicate(timeout=60)  # the caller hears "connecting you" and the call ends
    finally:
        if caller.poll() is None:
            caller.kill()
    report = json.loads(out)
    assert report["passed"] == 1, (report["scenarios"][0]["failures"], err[-2000:])
    assert report["scenarios"][0]["turns"][-1]["bot"].endswith("Connecting you.")
    page.get_by_label("Disposition").select_option("resolved")
    page.get_by_role("button", name="Wrap up").click()
    assert store.entry(report["scenarios"][0]["queue_entry"]).state == "wrapped_up"
