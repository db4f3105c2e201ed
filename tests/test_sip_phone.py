"""Real phones on the SIP line: Debian's baresip calls a serving process with the real bot (Rasa,
Whisper, pyttsx3, the queue and call records), speaks flite audio, keys digits, finds the line
busy, is put through to an agent's phone (a second baresip), and the line outlives garbage."""
import asyncio
import os
import random
import socket
import time
from pathlib import Path

import pytest

from ivr.config import Settings
from tests.conftest import voiced_seconds
from tests.eventually import last_call
# baresip_installed (autouse) and phones are fixtures: imported, pytest uses them here
from tests.sip_baresip import (Baresip, agent1_with_a_phone, baresip_installed, free_port, phone_voice,
                               phones)  # noqa: F401
from tests.sip_peer import RawPeer, garbage, valid_messages
from tests.sip_server import Served

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def voice(tmp_path_factory):
    """A caller's side of a call as an 8 kHz WAV: flite sentences and seconds of silence, in order.
    Returns the file and when (in seconds) each part ends."""
    folder = tmp_path_factory.mktemp("sip-voices")

    def render(name: str, *parts) -> tuple[Path, list[float]]:
        return phone_voice(folder, name, *parts)

    return render


@pytest.fixture(scope="module")
def line(trained_model, tmp_path_factory):
    """`ivr serve` with the SIP line, one call at a time, its own accounts, queue and call records;
    agent1 (skills en, billing) has a phone at sip:agent1@127.0.0.1:<line.agent_port>."""
    var = tmp_path_factory.mktemp("sip-var")
    agent_port = agent1_with_a_phone({"IVR_VAR": str(var)}, "agent one secret")
    served = Served(free_port(), var, max_calls=1, log=var / "serve.log")
    served.agent_port = agent_port
    served.uri = f"sip:ivr@{served.address[0]}:{served.address[1]}"
    yield served
    served.stop()


def line_env(line) -> dict:
    return {"IVR_VAR": str(line.var_dir)}


def listening(phones, voice, user: str) -> Baresip:
    """A caller whose microphone is quiet until they speak (`speak`): they listen to the bot first."""
    quiet, _ = voice("listening", 120.0)
    return phones(user, quiet)


def greeted(caller: Baresip, line) -> float:
    """The caller dials the bot and waits for the greeting to end; returns where in the call it ended."""
    caller.dial(line.uri)
    caller.wait_for("CALL_ESTABLISHED", timeout=10)
    return caller.wait_for_the_bot_to_finish()


def taken_by_agent1(queue, caller: Baresip, line, asks: Path):
    """The caller dials the bot and, after the greeting, asks for a person; agent1, available, takes
    them as soon as they are queued."""
    queue.set_agent_state("agent1", "available")
    greeted(caller, line)
    caller.speak(asks)
    deadline, taken = time.monotonic() + 40, None
    while taken is None:
        assert time.monotonic() < deadline, "the caller never joined the queue"
        time.sleep(0.5)
        taken = queue.take_next("agent1")
    return caller, taken


def test_a_caller_is_understood_and_keys_their_account_number(line, voice, phones):
    says, ends = voice("balance", "I want to check my balance", 40.0)
    caller = listening(phones, voice, "balance-caller")
    greeted(caller, line)
    said_at = len(caller.hearing()) / 16000 + ends[0]  # when the caller has said it
    caller.speak(says)
    keys_at = caller.wait_for_the_bot_to_finish()  # "please say or key in your account number"
    caller.send_keys("48151623#")  # RFC 4733 events, at the account number prompt
    caller.wait_for_the_bot_to_finish()  # the number read back, and the PIN asked for
    caller.hang_up()  # and thinks better of it
    caller.wait_for("CALL_CLOSED", timeout=10)

    record = last_call(line_env(line), "balance-caller")
    turns = record["turns"]
    assert record["channel"] == "sip" and record["task"] == "balance" and record["outcome"] == "abandoned"
    assert turns[0]["intent"] == "check_balance", turns
    keyed = [turn for turn in turns if turn["kind"] == "dtmf"]
    assert keyed and keyed[0]["heard"] == "48151623", turns
    assert "4 8 1 5 1 6 2 3" in " ".join(keyed[0]["bot"])
    heard = caller.heard()
    answer = heard.pcm[int((said_at + 0.3) * 8000) * 2:int(keys_at * 8000) * 2]
    # the bot answered in speech the caller heard (on failure: what was voiced, second by second, and the turns)
    timeline = [round(voiced_seconds(heard.pcm[i:i + 16000], 8000), 1) for i in range(0, len(heard.pcm), 16000)]
    assert voiced_seconds(answer, 8000) > 1.5, (said_at, keys_at, timeline, turns)


def test_a_second_caller_finds_the_line_busy(line, voice, phones):
    quiet, _ = voice("quiet", 20.0)
    first = phones("first-caller", quiet)
    first.dial(line.uri)
    first.wait_for("CALL_ESTABLISHED", timeout=10)
    second = phones("second-caller", quiet)
    second.dial(line.uri)
    refused = second.wait_for("CALL_CLOSED", "CALL_ESTABLISHED", timeout=10)
    assert refused["type"] == "CALL_CLOSED" and "486" in refused["param"], refused
    first.hang_up()
    first.wait_for("CALL_CLOSED", timeout=10)
    last_call(line_env(line), "first-caller")  # the line is free again for the next test


def test_a_caller_who_asks_for_a_person_is_put_through_to_the_agents_phone(line, voice, phones):
    from ivr.queue import open_queue

    settings = Settings.from_env(dict(os.environ, IVR_VAR=str(line.var_dir)))
    hold, _ = voice("agent-waits", 120.0)
    asks, _ = voice("asks-for-agent", "I want to talk to an agent", 90.0)
    to_agent, _ = voice("to-the-agent", 0.5, "Hello, I have a question about my bill.", 1.0)
    agent = phones("agent1", hold, auto_answer=True, sip_port=line.agent_port)
    with open_queue(settings) as queue:
        caller, taken = taken_by_agent1(queue, listening(phones, voice, "transfer-caller"), line, asks)
        agent.wait_for("CALL_ESTABLISHED", timeout=40)  # the line rang agent1's phone; it answered
        caller.speak(to_agent)
        caller.wait_for("CALL_CLOSED", timeout=20)  # the caller hangs up after speaking to the agent...
        agent.wait_for("CALL_CLOSED", timeout=10)  # ...and the line hangs up the agent's side too
        assert queue.entry(taken.id).connected_at is not None
        queue.wrap_up(taken.id, "agent1", "resolved")  # one caller at a time: done with this one

    assert voiced_seconds(agent.heard().pcm, 8000) > 1.2  # the agent heard the caller
    record = last_call(line_env(line), "transfer-caller")
    assert record["turns"][0]["intent"] == "request_agent", record["turns"]
    assert (record["outcome"], record["queue_outcome"]) == ("escalated", "taken")


def test_an_agent_who_hangs_up_first_ends_the_callers_call_when_it_was_not_drawn_for_the_survey(line, voice, phones):
    """The shipped dialogs survey no one (share 0): nobody is given back to the bot (tests/test_survey_after_agent.py
    has the drawn caller who is)."""
    from ivr.queue import open_queue

    settings = Settings.from_env(dict(os.environ, IVR_VAR=str(line.var_dir)))
    hold, _ = voice("agent-finishes", 120.0)
    asks, _ = voice("asks-for-agent-once-more", "I want to talk to an agent", 90.0)
    agent = phones("agent1", hold, auto_answer=True, sip_port=line.agent_port)
    with open_queue(settings) as queue:
        caller, taken = taken_by_agent1(queue, listening(phones, voice, "agent-ends-it"), line, asks)
        agent.wait_for("CALL_ESTABLISHED", timeout=40)
        agent.hang_up()
        agent.wait_for("CALL_CLOSED", timeout=10)
        caller.wait_for("CALL_CLOSED", timeout=10)  # the line hangs up the caller's side too, unasked
        queue.wrap_up(taken.id, "agent1", "resolved")
    record = last_call(line_env(line), "agent-ends-it")
    assert (record["outcome"], record["queue_outcome"], record["csat"]) == ("escalated", "taken", None)


def test_a_caller_whose_agent_does_not_pick_up_goes_back_to_their_place_in_line(line, voice, phones):
    from ivr.queue import open_queue

    settings = Settings.from_env(dict(os.environ, IVR_VAR=str(line.var_dir)))
    hold, _ = voice("agent-away", 60.0)
    asks, _ = voice("asks-for-agent-again", "I want to talk to an agent", 40.0)
    agent = phones("agent1", hold, sip_port=line.agent_port)  # rings, nobody answers
    with open_queue(settings) as queue:
        caller, taken = taken_by_agent1(queue, listening(phones, voice, "unlucky-caller"), line, asks)
        agent.wait_for("CALL_INCOMING", timeout=20)
        agent.hang_up()  # declines the call
        deadline = time.monotonic() + 20
        while queue.entry(taken.id).state != "waiting":
            assert time.monotonic() < deadline, f"the caller did not go back in line: {queue.entry(taken.id)}"
            time.sleep(0.3)
        back = queue.entry(taken.id)
        assert back.enqueued_at == taken.enqueued_at and back.agent is None  # their old place
        assert queue.agent("agent1").state == "offline"  # not at their phone: no more callers for them
        caller.hang_up()
        caller.wait_for("CALL_CLOSED", timeout=10)
    record = last_call(line_env(line), "unlucky-caller")
    assert "could not be reached" in " ".join(record["turns"][0]["bot"])
    assert (record["outcome"], record["queue_outcome"]) == ("escalated", "abandoned")


def test_the_line_outlives_garbage_with_its_memory_and_still_takes_calls(line, voice, phones):
    async def flood() -> tuple[int, int]:
        peer = await RawPeer(line.address, user="garbage-peer").open()
        stranger = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        stranger.bind(("127.0.0.2", 0))  # another host: its RTP is not the caller's
        try:
            dialog, responses = await peer.call()
            assert responses[-1].status == 200
            await asyncio.sleep(1.0)
            before = line.rss_kb()
            rng = random.Random(11)
            for index, data in enumerate(garbage(rng, valid_messages(peer), 4000)):
                peer.send(data)
                stranger.sendto(data, line.address)
                stranger.sendto(rng.randbytes(rng.randint(12, 300)), dialog.remote_rtp)
                peer.send_rtp(b"\x00" + rng.randbytes(rng.randint(0, 200)), dialog.remote_rtp)  # not RTP at all
                if index % 40 == 0:
                    await asyncio.sleep(0.01)
            await asyncio.sleep(1.0)
            after = line.rss_kb()
            options = peer.new_dialog()
            peer.send(peer.request("OPTIONS", options))
            while (answer := await peer.receive()).call_id != options.call_id:
                pass
            assert answer.status == 503  # still answering; full (--max-calls 1, the peer's call is on), as a
            peer.hang_up(dialog)  # proxy's probe is told
            return before, after
        finally:
            stranger.close()
            peer.close()

    before, after = asyncio.run(flood())
    assert after - before < 5000, f"RSS grew {after - before} kB under garbage"
    last_call(line_env(line), "garbage-peer")
    greeting, _ = voice("listens", 6.0)
    caller = phones("after-garbage", greeting)
    caller.dial(line.uri)
    caller.wait_for("CALL_ESTABLISHED", timeout=10)
    caller.wait_for("CALL_CLOSED", timeout=15)
    assert voiced_seconds(caller.heard().pcm, 8000) > 1.5  # greeted as usual
