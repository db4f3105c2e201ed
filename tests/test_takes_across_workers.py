"""Two `ivr serve --sip` workers on one PostgreSQL: a caller queued by worker A is taken from the console
served by worker B and bridged to the agent's baresip phone. Worker A learns of the take through PostgreSQL's
LISTEN/NOTIFY (ivr.queue.notices); how soon the agent's phone rang after the take is printed."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from ivr.queue import QueueStore
from tests.conftest import voiced_seconds
from tests.console_helpers import AgentBrowser
from tests.eventually import last_call, waiting_caller
# baresip_installed (autouse) and phones are fixtures: imported, pytest uses them here
from tests.sip_baresip import (agent1_with_a_phone, baresip_installed, free_port, phone_voice,
                               phones)  # noqa: F401
from tests.sip_server import ROOT, Served

pytestmark = pytest.mark.slow
PASSWORD = "agent one secret"
IVR = Path(sys.executable).parent / "ivr"


@pytest.fixture(scope="module")
def install(postgres, tmp_path_factory):
    """One install (var/, its secrets) on one PostgreSQL database: accounts, queue and call records; agent1
    (en, billing) has a phone at sip:agent1@127.0.0.1:<agent_port>."""
    name = postgres.create_database()
    var = tmp_path_factory.mktemp("takes-var")
    env = {"IVR_VAR": str(var), "IVR_DATABASE_URL": postgres.url(name)}
    yield env, var, agent1_with_a_phone(env, PASSWORD)
    postgres.drop_database(name)


class Worker(Served):
    """`ivr -v serve --sip 127.0.0.1:PORT --port CONSOLE --worker worker-NAME` on the install's database (-v: its
    log says what it did, for a failure's message)."""

    def __init__(self, name: str, var: Path, env: dict):
        self.var_dir, self.log_path, self.name = var, var / f"worker-{name}.log", f"worker-{name}"
        console, sip = free_port(socket.SOCK_STREAM), free_port()
        self.console, self._log = f"http://127.0.0.1:{console}/", open(self.log_path, "wb")
        self.process = subprocess.Popen([str(IVR), "-v", "serve", "--port", str(console), "--sip", f"127.0.0.1:{sip}",
                                         "--max-calls", "2", "--worker", self.name],
                                        stdout=subprocess.PIPE, stderr=self._log, env=dict(os.environ, **env), cwd=ROOT)
        self.address = self._listening(timeout=300)  # two bots loading side by side on a busy machine
        self.uri = f"sip:ivr@{self.address[0]}:{self.address[1]}"

    def said(self) -> str:
        """Its log, without the libraries' warnings."""
        return "\n".join(line for line in self.log_path.read_text(errors="replace").splitlines()
                         if line.startswith(("INFO ivr", "WARNING ivr", "ERROR ivr")))


@pytest.fixture(scope="module")
def workers(install):
    """Worker A and worker B, started side by side (each loads the bot)."""
    env, var, _ = install
    with ThreadPoolExecutor(2) as pool:
        starting = [pool.submit(Worker, name, var, env) for name in ("A", "B")]
    started = [future.result() for future in starting if future.exception() is None]
    try:
        assert len(started) == 2, f"a worker did not start: {[f.exception() for f in starting if f.exception()]}"
        yield started
    finally:
        for worker in started:
            worker.stop()


@pytest.fixture
def voice(tmp_path):
    """A caller's side of a call as an 8 kHz WAV: flite sentences and seconds of silence, in order."""
    def render(name: str, *parts) -> Path:
        return phone_voice(tmp_path, name, *parts)[0]

    return render


def test_a_caller_queued_by_worker_a_is_taken_on_worker_bs_console_and_bridged_to_the_agents_phone(
        install, workers, voice, phones):
    env, _, agent_port = install
    worker_a, worker_b = workers
    agent_phone = phones("agent1", voice("agent-waits", 120.0), auto_answer=True, sip_port=agent_port)
    caller = phones("cross-worker-caller", voice("listening", 120.0))
    caller.dial(worker_a.uri)
    caller.wait_for("CALL_ESTABLISHED", timeout=10)
    caller.wait_for_the_bot_to_finish()  # the greeting
    caller.speak(voice("asks", "I want to talk to an agent", 90.0))
    with QueueStore(env["IVR_DATABASE_URL"]) as queue:
        entry = waiting_caller(queue, worker_a.said)
        desk = AgentBrowser(worker_b.console)  # the agent's console is served by the other worker
        assert desk.login("agent1", PASSWORD).ok
        assert desk.post("agent/state", state="available").ok
        assert desk.post(f"queue/{entry.id}/take").json()["holding"] == entry.id
        taken_at = time.monotonic()

        rang = agent_phone.wait_for("CALL_INCOMING", "CALL_ESTABLISHED", timeout=40)  # worker A heard the take
        rings_after = time.monotonic() - taken_at
        if rang["type"] == "CALL_INCOMING":
            agent_phone.wait_for("CALL_ESTABLISHED", timeout=20)  # and the agent's phone answered
        caller.speak(voice("to-the-agent", 0.5, "Hello, I have a question about my bill.", 1.0))
        caller.wait_for("CALL_CLOSED", timeout=20)  # the caller hangs up after speaking to the agent...
        agent_phone.wait_for("CALL_CLOSED", timeout=10)  # ...and worker A hangs up the agent's side too
        assert queue.entry(entry.id).connected_at is not None
        assert desk.post(f"calls/{entry.id}/wrap-up", disposition="resolved").ok

    assert voiced_seconds(agent_phone.heard().pcm, 8000) > 1.2  # the agent heard the caller, through worker A
    record = last_call(env, "cross-worker-caller")
    assert (record["worker"], record["queue_outcome"]) == (worker_a.name, "taken")
    print(f"\nthe agent's phone rang {rings_after:.1f} s after the take on worker B's console (worker A said "
          f"\"An agent is ready for you now. Connecting you.\" first)")
