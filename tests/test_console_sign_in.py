"""Who may use the console, through `ivr serve` as it runs: sign-in throttling with a lockout and an audit
line, sessions that really end (sign-out, a new password), and the caller an agent holds kept by the
database (one at a time, whatever screen; still on their screen after signing in again)."""
from __future__ import annotations

import requests

from ivr.queue import AVAILABLE
from tests.conftest import ivr_command
from tests.console_helpers import AgentBrowser, Serve, escalation, hidden_csrf
from tests.test_console_serve import store, var_dir  # noqa: F401 - fixtures: a var/ and agent alice


def with_bob(store):
    """A second agent beside alice (the console tests' store)."""
    store.add_agent("bob", "battery staple", "en,billing")


def test_guessing_a_password_locks_the_name_out_and_every_failure_is_an_audit_line(var_dir, store):
    with_bob(store)
    with Serve(var_dir) as serve:
        guesser = AgentBrowser(serve.url)
        statuses = [guesser.login("alice", f"guess {n}").status_code for n in range(5)]
        refused = guesser.login("alice", "correct horse")  # the right one, straight after: still refused
        bob = AgentBrowser(serve.url).login("bob", "battery staple")  # another name from this address may
        status, stderr = serve.stop()
    assert statuses == [401] * 5
    assert refused.status_code == 429 and "Too many failed sign-ins" in refused.text
    assert bob.ok
    audit = [line for line in stderr.splitlines() if "console sign-in" in line]
    assert sum("sign-in failed: name 'alice' from 127.0.0.1" in line for line in audit) == 5, audit
    assert any("refused (locked out): name 'alice'" in line for line in audit), audit
    assert "correct horse" not in stderr and "guess 1" not in stderr  # no password in the log


def test_an_address_guessing_many_names_is_locked_out_too(var_dir, store):
    with_bob(store)
    with Serve(var_dir) as serve:
        guesser = AgentBrowser(serve.url)
        statuses = [guesser.login(f"name{n}", "whatever it is").status_code for n in range(20)]
        bob = AgentBrowser(serve.url).login("bob", "battery staple")
    assert statuses == [401] * 20 and bob.status_code == 429


def test_a_cookie_copied_before_sign_out_or_a_new_password_is_worth_nothing(var_dir, store):
    with Serve(var_dir) as serve:
        alice = AgentBrowser(serve.url)
        assert alice.login("alice", "correct horse").ok
        thief = AgentBrowser(serve.url)
        thief.http.cookies.update(alice.http.cookies)  # copied before she signs out
        assert thief.view()["agent"]["name"] == "alice"
        assert alice.post("logout").ok
        assert thief.http.get(serve.url + "agent.json").status_code == 401

        assert alice.login("alice", "correct horse").ok
        thief.http.cookies.update(alice.http.cookies)
        changed = ivr_command("agents", "add", "alice", "--skills", "en,billing", "--password-stdin",
                              input="a new passphrase\n", env={"IVR_VAR": str(var_dir)}, timeout=60)
        assert changed.returncode == 0 and "signed out of 1 console session" in changed.stdout, changed.stdout
        assert thief.http.get(serve.url + "agent.json").status_code == 401
        assert alice.http.get(serve.url + "agent.json").status_code == 401
        assert alice.login("alice", "a new passphrase").ok


def test_an_agent_holds_one_caller_whatever_screen_and_finds_them_after_signing_in_again(var_dir, store):
    first, second = (store.enqueue(escalation(summary=f"caller {n}")).id for n in (1, 2))
    with Serve(var_dir) as serve:
        desk, laptop = AgentBrowser(serve.url), AgentBrowser(serve.url)
        assert desk.login("alice", "correct horse").ok and laptop.login("alice", "correct horse").ok
        assert desk.post("agent/state", state=AVAILABLE).ok
        assert desk.post("queue/take-next").json()["holding"] == first
        other = laptop.post(f"queue/{second}/take")  # two browsers held two callers before
        assert other.status_code == 409 and "Wrap up the caller you hold" in other.json()["message"]

        assert desk.post("logout").ok
        back = AgentBrowser(serve.url)
        assert back.login("alice", "correct horse").ok
        pop = back.view()["holding"]  # the screen-pop was gone after signing in again: the caller stranded
        assert pop is not None and pop["id"] == first
        assert back.post(f"calls/{first}/wrap-up", disposition="resolved").ok
        assert back.view()["agent"]["state"] == AVAILABLE  # wrapped up: ready for the next caller
    assert store.entry(second).agent is None


def test_behind_a_tls_proxy_the_session_cookie_goes_over_https_only(var_dir, store):
    """`ivr serve --secure-cookies`: the login page's cookie and the signed-in one are marked Secure, so a browser
    never sends them over plain HTTP; without the flag (the console reached over HTTP) they are not, or no one
    could sign in."""
    for flags, secure in ((["--secure-cookies"], True), ([], False)):
        with Serve(var_dir, flags=flags) as serve:
            page = requests.get(serve.url + "login", timeout=10)
            # sent by hand: a client's cookie jar rightly keeps a Secure cookie from a plain-HTTP request
            cookie = page.headers["Set-Cookie"].split(";")[0]
            signed_in = requests.post(serve.url + "login", headers={"Cookie": cookie}, allow_redirects=False,
                                      data={"csrf": hidden_csrf(page.text), "name": "alice",
                                            "password": "correct horse"}, timeout=10)
        assert signed_in.status_code == 303 and signed_in.headers["Location"] == "/agent", signed_in.text
        for response in (page, signed_in):
            header = response.headers["Set-Cookie"]
            assert header.startswith("ivr_console="), header
            assert ("secure" in cookie_attributes(header)) is secure, (flags, header)


def cookie_attributes(set_cookie: str) -> set[str]:
    """The attribute names of one Set-Cookie header, lower-cased: {'httponly', 'secure', 'samesite', ...}."""
    return {part.strip().split("=", 1)[0].lower() for part in set_cookie.split(";")[1:]}
