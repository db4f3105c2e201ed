"""Helpers for the console tests: a real `ivr serve` subprocess and an agent's HTTP session."""
from __future__ import annotations

import os
import re
import selectors
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Optional, Sequence

import requests

from ivr.config import Settings
from ivr.events import Escalation, TranscriptLine

ROOT = Path(__file__).resolve().parent.parent
IVR = Path(sys.executable).parent / "ivr"


class Serve:
    """`ivr serve --port 0` as a user runs it, with its var folder (and database URL) in the environment;
    `flags` are more of its command line (e.g. --secure-cookies)."""

    def __init__(self, var_dir: Path, database_url: Optional[str] = None, port: int = 0, flags: Sequence[str] = ()):
        self.env = dict(os.environ, IVR_VAR=str(var_dir))
        self.env.pop("IVR_DATABASE_URL", None)
        if database_url:
            self.env["IVR_DATABASE_URL"] = database_url
        self.port, self.flags = port, list(flags)
        self.process: Optional[subprocess.Popen] = None
        self.url = ""

    def start(self, timeout: float = 30.0) -> "Serve":
        self.process = subprocess.Popen([str(IVR), "serve", "--port", str(self.port), *self.flags],
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=self.env,
                                        cwd=ROOT)
        line = _read_line(self.process, timeout)
        found = re.search(r"(http://\S+)", line)
        assert found, f"ivr serve printed {line!r}; stderr: {self.process.stderr.read() if self.process.poll() is not None else ''}"
        self.url = found.group(1)
        return self

    def stop(self, timeout: float = 15.0) -> tuple[int, str]:
        """SIGTERM, as a service manager stops it: exit status and what it said on stderr."""
        self.process.send_signal(signal.SIGTERM)
        _, stderr = self.process.communicate(timeout=timeout)
        return self.process.returncode, stderr

    def kill(self) -> None:
        self.process.kill()
        self.process.communicate(timeout=15)

    def __enter__(self) -> "Serve":
        return self.start()

    def __exit__(self, *exc_info) -> None:
        if self.process and self.process.poll() is None:
            self.kill()


def _read_line(process: subprocess.Popen, timeout: float) -> str:
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        if not selector.select(timeout):
            process.kill()
            raise AssertionError(f"ivr serve said nothing in {timeout} s: {process.communicate()[1]}")
    return process.stdout.readline()


class AgentBrowser:
    """One agent's HTTP session with the console (cookies, CSRF token), as a script would drive it."""

    def __init__(self, url: str):
        self.url, self.http, self.csrf = url, requests.Session(), ""

    def login(self, name: str, password: str) -> requests.Response:
        self.csrf = hidden_csrf(self.http.get(self.url + "login").text)
        response = self.http.post(self.url + "login", data={"csrf": self.csrf, "name": name, "password": password})
        if response.ok:
            self.csrf = hidden_csrf(response.text)  # a new session, a new token
        return response

    def post(self, path: str, **form) -> requests.Response:
        return self.http.post(self.url + path, data={"csrf": self.csrf, **form},
                              headers={"Accept": "application/json"})

    def view(self) -> dict:
        response = self.http.get(self.url + "agent.json")
        response.raise_for_status()
        return response.json()


class EventStream:
    """An agent's server-sent events, read as the browser's EventSource would."""

    def __init__(self, agent: AgentBrowser, path: str, timeout: float = 10.0):
        self._response = agent.http.get(agent.url + path, stream=True, timeout=timeout)
        self._response.raise_for_status()
        self._lines = self._response.iter_lines(chunk_size=None, decode_unicode=True)

    def until(self, wanted, timeout: float = 15.0) -> list[tuple[str, str]]:
        """(event, data) pairs, in order, up to the first one `wanted(event, data)` accepts."""
        seen, kind, data = [], "message", []
        deadline = time.monotonic() + timeout
        for line in self._lines:
            if time.monotonic() > deadline:
                break
            if line.startswith("event: "):
                kind = line[7:]
            elif line.startswith("data: "):
                data.append(line[6:])
            elif line == "" and data:
                seen.append((kind, "\n".join(data)))
                if wanted(*seen[-1]):
                    return seen
                kind, data = "message", []
        raise AssertionError(f"not the event wanted in {timeout} s; seen: {seen}")

    def __enter__(self) -> "EventStream":
        return self

    def __exit__(self, *exc_info) -> None:
        self._response.close()


def hidden_csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, "no CSRF token in the page"
    return found.group(1)


def settings_for(var_dir: Path) -> Settings:
    return Settings(var_dir=var_dir)


def escalation(summary: str = "Wants to pay the bill; the card was declined twice.", **fields) -> Escalation:
    values = dict(reason="payment_declined", summary=summary, task="bill_pay",
                  slots={"account": "48…623", "amount": "$120.75", "card": "ending 4242"},
                  transcript=(TranscriptLine("bot", "How can I help you?"),
                              TranscriptLine("caller", "I want to pay my bill"),
                              TranscriptLine("bot", "Sorry, the card was declined.")),
                  frustration=0.72, caller_number="+13125550100", account="48…623", authenticated=True,
                  call_id="test-call", channel="sip")
    values.update(fields)
    return Escalation(**values)


def wait_until(check, timeout: float = 10.0, every: float = 0.1):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(every)
