"""The satisfaction survey after an agent's call, on real phones: a baresip caller asks for a person, agent1
takes them on the console and is bridged to their baresip phone. When the AGENT hangs up first, the caller
is given back to the bot and asked about the agent; they key 4 (RFC 4733) and the score is stored with the
escalated call, for the report's "agents" CSAT. A caller who hangs up first ends the call, the agent's leg
too, unasked. The line serves a copy of the dialogs asking every call (survey.share 1, after_agent true)."""
from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import pytest

from ivr.config import Settings
from tests.conftest import ivr_command, until_the_bot_has_spoken, voiced_seconds
from tests.console_helpers import AgentBrowser
from tests.eventually import last_call, waiting_caller
# baresip_installed (autouse) and phones are fixtures: imported, pytest uses them here
from tests.sip_baresip import (agent1_with_a_phone, baresip_installed, free_port, phone_voice,
                               phones)  # noqa: F401
from tests.sip_server import Served
from tests.survey_dialogs import surveying_dialogs

pytestmark = pytest.mark.slow
PASSWORD = "agent one secret"


@pytest.fixture(scope="module")
def line(trained_model, tmp_path_factory):
    """`ivr serve --sip` on the surveying dialogs, one call at a time, with its console; agent1 (en, billing) has a
    phone at sip:agent1@127.0.0.1:<line.agent_port>."""
    var = tmp_path_factory.mktemp("after-agent-var")
    dialogs = surveying_dialogs(tmp_path_factory.mktemp("after-agent-dialogs"))
    env = {"IVR_VAR": str(var), "IVR_DIALOGS": str(dialogs)}
    agent_port, console_port = agent1_with_a_phone(env, PASSWORD), free_port(socket.SOCK_STREAM)
    before = os.environ.get("IVR_DIALOGS")
    os.environ["IVR_DIALOGS"] = str(dialogs)  # Served passes its environment on to `ivr serve`
    try:
        served = Served(free_port(), var, max_calls=1, log=var / "serve.log", flags=("--port", str(console_port)))
    finally:
        os.environ.pop("IVR_DIALOGS") if before is None else os.environ.update(IVR_DIALOGS=before)
    served.env_for_commands, served.agent_port = env, agent_port
    served.uri = f"sip:ivr@{served.address[0]}:{served.address[1]}"
    served.console = f"http://127.0.0.1:{console_port}/"
    yield served
    served.stop()


def bridged_to_agent1(line, phones, caller_name: str, tmp_path: Path):
    """A caller asks for a person; agent1 takes them on the console and their phone answers. Returns the caller,
    the agent's phone, the agent's console session and the queue entry."""
    quiet, _ = phone_voice(tmp_path, "quiet", 120.0)  # both listen until they speak
    agent = phones("agent1", quiet, auto_answer=True, sip_port=line.agent_port)
    caller = phones(caller_name, quiet)
    caller.dial(line.uri)
    caller.wait_for("CALL_ESTABLISHED", timeout=10)
    caller.wait_for_the_bot_to_finish()  # the greeting
    caller.speak(phone_voice(tmp_path, "asks", "I want to talk to an agent", 90.0)[0])
    from ivr.queue import open_queue

    with open_queue(Settings.from_env(dict(os.environ, **line.env_for_commands))) as queue:
        entry = waiting_caller(queue, lambda: line.log_path.read_text(errors="replace"))
    desk = AgentBrowser(line.console)
    assert desk.login("agent1", PASSWORD).ok
    assert desk.post("agent/state", state="available").ok
    assert desk.post(f"queue/{entry.id}/take").json()["holding"] == entry.id
    agent.wait_for("CALL_ESTABLISHED", timeout=40)  # the line rang agent1's phone; it answered
    caller.speak(phone_voice(tmp_path, "to-the-agent", 0.5, "Hello, I have a question about my bill.", 90.0)[0])
    until_the_bot_has_spoken(agent.hearing, 8000, timeout=40, who="agent1, hearing the caller")  # they talk
    return caller, agent, desk, entry


def test_when_the_agent_hangs_up_first_the_caller_is_asked_about_the_agent_and_keys_4(line, phones, tmp_path):
    caller, agent, desk, entry = bridged_to_agent1(line, phones, "rates-the-agent", tmp_path)
    agent.hang_up()  # the agent is done first
    agent.wait_for("CALL_CLOSED", timeout=10)
    caller.wait_for_the_bot_to_finish(timeout=60)  # the bot, back on the caller's line, asks the question
    caller.send_keys("4")  # RFC 4733
    caller.wait_for("CALL_CLOSED", timeout=40)  # thanked, goodbye and BYE from the bot
    assert desk.post(f"calls/{entry.id}/wrap-up", disposition="resolved").ok

    assert voiced_seconds(agent.heard().pcm, 8000) > 1.2  # the agent did hear the caller first
    record = last_call(line.env_for_commands, "rates-the-agent")
    assert (record["outcome"], record["queue_outcome"]) == ("escalated", "taken")
    assert record["csat"] == {"asked": True, "score": 4, "by": "keypad", "agent": "agent1"}
    answered = [turn for turn in record["turns"] if turn["prompt"] == "utter_ask_satisfaction_agent"]
    assert [(turn["kind"], turn["heard"]) for turn in answered] == [("dtmf", "4")], record["turns"]
    assert "Thank you for your answer" in " ".join(answered[0]["bot"])
    shown = ivr_command("calls", "show", record["call_id"], "--json", env=line.env_for_commands)
    assert json.loads(shown.stdout)["csat"]["score"] == 4, shown.stderr
    report = ivr_command("report", "--json", env=line.env_for_commands)
    assert report.returncode == 0, report.stderr
    survey = json.loads(report.stdout)["csat"]
    assert (survey["agents"]["answered"], survey["agents"]["average"]) == (1, 4)
    assert survey["by_agent"]["agent1"]["answered"] == 1
    # the bot's handle time leaves out the time with the agent: the record ends later than its seconds say
    assert record["seconds"] < _seconds_between(record["started_at"], record["ended_at"]) - 1.0


def test_a_caller_who_hangs_up_on_their_agent_is_not_asked_and_the_agents_leg_ends(line, phones, tmp_path):
    caller, agent, desk, entry = bridged_to_agent1(line, phones, "leaves-the-agent", tmp_path)
    caller.hang_up()
    caller.wait_for("CALL_CLOSED", timeout=10)
    agent.wait_for("CALL_CLOSED", timeout=10)  # the line hangs up the agent's side too
    assert desk.post(f"calls/{entry.id}/wrap-up", disposition="resolved").ok

    record = last_call(line.env_for_commands, "leaves-the-agent")
    assert (record["outcome"], record["queue_outcome"], record["csat"]) == ("escalated", "taken", None)
    assert not any(turn["prompt"] == "utter_ask_satisfaction_agent" for turn in record["turns"])


def _seconds_between(started: str, ended: str) -> float:
    from datetime import datetime

    return (datetime.fromisoformat(ended) - datetime.fromisoformat(started)).total_seconds()
