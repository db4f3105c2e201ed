"""`ivr serve --sip` as one worker behind a SIP proxy, with the real bot: what Kamailio's dispatcher
asks of it (OPTIONS: 200 while it can take a call, 503 when full or draining), where a call's audio is
bound (--rtp-ports), the worker named in every call record (--worker), and SIGUSR1: no new calls, the
current one finishes (a caller put through to an agent's phone included), then the process stops by itself,
and a SIGUSR1 while the bot is still loading is kept, not the process's death."""
import asyncio
import os
import re
import signal
import time
from pathlib import Path

import pytest

from ivr.config import Settings
from tests.conftest import ivr_command, voiced_seconds
from tests.eventually import call_record
from tests.running import Running
from tests.sip_baresip import Baresip, available, free_port, phone_voice
from tests.sip_peer import RawPeer

pytestmark = pytest.mark.slow

RTP_LOW, RTP_HIGH = 31000, 31009


@pytest.fixture(scope="module")
def worker(trained_model, tmp_path_factory):
    var = tmp_path_factory.mktemp("sip-worker")
    running = Running(["serve", "--port", "0", "--sip", f"127.0.0.1:{free_port()}", "--max-calls", "1",
                       "--worker", "desk-7", "--rtp-ports", f"{RTP_LOW}-{RTP_HIGH}"],
                      log=var / "serve.log", env={"IVR_VAR": str(var)})
    found = running.printed(r"SIP line: sip:([\d.]+):(\d+)", timeout=180)
    running.address, running.var = (found[1], int(found[2])), var
    yield running
    running.stop()


async def options(peer: RawPeer):
    peer.send(peer.request("OPTIONS", peer.new_dialog()))
    return await peer.receive()


def audio_port(answer) -> int:
    return int(re.search(rb"m=audio (\d+)", answer.body)[1])


def test_the_worker_answers_probes_while_it_has_room_and_names_itself_in_each_record(worker):
    async def test():
        peer = await RawPeer(worker.address).open()
        try:
            probe = await options(peer)
            assert probe.status == 200, probe
            dialog, responses = await peer.call()
            assert responses[-1].status == 200
            assert RTP_LOW <= audio_port(responses[-1]) <= RTP_HIGH and audio_port(responses[-1]) % 2 == 0
            assert len(await peer.heard(1.0)) > 0  # the greeting has begun
            full = await options(peer)  # --max-calls 1: no room for another caller
            assert (full.status, full.get("Retry-After")) == (503, "30"), full
            peer.hang_up(dialog)
            assert (await peer.receive(skip_provisional=True)).status == 200
            for _ in range(100):  # the call is over once the worker has let it go: room again
                if (await options(peer)).status == 200:
                    break
                await asyncio.sleep(0.1)
            else:
                raise AssertionError("the worker never said it had room again")
            return "sip-" + re.search(r"tag=(\w+)", dialog.to)[1]
        finally:
            peer.close()

    call_id = asyncio.run(test())
    assert call_record({"IVR_VAR": str(worker.var)}, call_id)["worker"] == "desk-7"
    shown = ivr_command("calls", "show", call_id, env={"IVR_VAR": str(worker.var)})
    assert "answered by worker desk-7" in shown.stdout.splitlines()[0], shown.stdout
    listed = ivr_command("calls", "list", env={"IVR_VAR": str(worker.var)})
    assert [line for line in listed.stdout.splitlines() if call_id in line][0].endswith("  desk-7"), listed.stdout


def test_a_draining_worker_takes_no_new_call_finishes_the_current_one_then_stops(worker):
    async def test():
        peer = await RawPeer(worker.address, user="5550101").open()
        newcomer = await RawPeer(worker.address, user="5550102").open()
        try:
            dialog, responses = await peer.call()
            assert responses[-1].status == 200
            printed = len(worker.lines)
            worker.signal(signal.SIGUSR1)
            await asyncio.to_thread(worker.printed, r"draining desk-7: no new calls, 1 to finish", 20, printed)
            refused = await options(newcomer)
            assert (refused.status, refused.get("Retry-After")) == (503, "30")
            _, answers = await newcomer.call()
            assert answers[-1].status == 503, answers[-1]
            assert len(await peer.heard(1.0)) > 0 and worker.process.poll() is None  # the current call goes on
            peer.hang_up(dialog)
            assert (await peer.receive(skip_provisional=True)).status == 200
            await asyncio.to_thread(worker.printed, r"drained desk-7: no calls left, stopping", 30, printed)
        finally:
            peer.close()
            newcomer.close()

    asyncio.run(test())
    assert worker.exited(timeout=30) == 0
    assert "ivr serve: stopped" in worker.log()


def test_a_wrong_rtp_port_range_is_said_in_one_line():
    refused = ivr_command("serve", "--sip", "127.0.0.1:0", "--rtp-ports", "31010-31000")
    assert refused.returncode == 2
    assert refused.stderr.strip().splitlines() == [
        "ivr serve: --rtp-ports 31010-31000: the ports must be within 1024-65535, the first not above the last "
        "(e.g. --rtp-ports 20000-20999)"]


def test_a_drain_asked_while_the_bot_loads_is_kept_and_done_once_the_line_is_up(trained_model, tmp_path):
    starting = Running(["serve", "--port", "0", "--sip", f"127.0.0.1:{free_port()}", "--worker", "early"],
                       log=tmp_path / "serve.log", env={"IVR_VAR": str(tmp_path)})
    try:
        starting.printed(r"ivr serve: loading the bot", timeout=120)
        starting.signal(signal.SIGUSR1)  # the default action would end it there and then, silently
        starting.printed(r"SIP line: sip:", timeout=180)
        starting.printed(r"draining early: no new calls, 0 to finish", timeout=30)
        starting.printed(r"drained early: no calls left, stopping", timeout=30)
        assert starting.exited(timeout=30) == 0
    finally:
        starting.stop()


def spoken(folder: Path, name: str, *parts) -> Path:
    """flite sentences and seconds of silence, in order, as an 8 kHz WAV for a phone's microphone."""
    return phone_voice(folder, name, *parts)[0]


def test_draining_keeps_a_caller_talking_to_an_agent_until_they_hang_up(trained_model, tmp_path):
    """The bot has left a caller it put through to an agent, but the line still bridges the two: a drain
    (a rolling restart) must not cut them off, and stops the worker once they are done."""
    from ivr.queue import open_queue

    if not available():
        pytest.fail("baresip is not installed: run `make setup` (apt-get install baresip)", pytrace=False)
    env, agent_port = {"IVR_VAR": str(tmp_path)}, free_port()
    added = ivr_command("agents", "add", "agent1", "--skills", "en,billing", "--sip",
                        f"sip:agent1@127.0.0.1:{agent_port}", "--password-stdin", env=env, input="agent one secret\n")
    assert added.returncode == 0, added.stderr
    worker = Running(["serve", "--port", "0", "--sip", f"127.0.0.1:{free_port()}", "--worker", "desk-9"],
                     log=tmp_path / "serve.log", env=env)
    agent = Baresip(tmp_path / "agent1", spoken(tmp_path, "hold", 120.0), user="agent1", auto_answer=True,
                    sip_port=agent_port)
    caller = Baresip(tmp_path / "caller", spoken(tmp_path, "quiet", 120.0), user="bridged-caller")
    try:
        found = worker.printed(r"SIP line: (sip:[\d.]+:\d+)", timeout=180)
        with open_queue(Settings.from_env(dict(os.environ, **env))) as queue:
            queue.set_agent_state("agent1", "available")
            caller.dial(f"sip:ivr@{found[1].removeprefix('sip:')}")
            caller.wait_for("CALL_ESTABLISHED", timeout=10)
            caller.wait_for_the_bot_to_finish()
            caller.speak(spoken(tmp_path, "asks", "I want to talk to an agent", 90.0))
            deadline, taken = time.monotonic() + 40, None
            while taken is None:
                assert time.monotonic() < deadline, "the caller never joined the queue"
                time.sleep(0.5)
                taken = queue.take_next("agent1")
            agent.wait_for("CALL_ESTABLISHED", timeout=40)  # put through: the bot's part of the call is over
            printed = len(worker.lines)
            worker.signal(signal.SIGUSR1)
            worker.printed(r"draining desk-9: callers still talking to an agent", timeout=30, after=printed)
            caller.speak(spoken(tmp_path, "to-agent", 0.5, "Hello, I have a question about my bill.", 1.0))
            caller.wait_for("CALL_CLOSED", timeout=20)  # baresip hangs up once its file has played
            agent.wait_for("CALL_CLOSED", timeout=10)
            queue.wrap_up(taken.id, "agent1", "resolved")
        assert voiced_seconds(agent.heard().pcm, 8000) > 1.2  # the bridge carried the caller after the drain
        worker.printed(r"drained desk-9: no calls left, stopping", timeout=30, after=printed)
        assert worker.exited(timeout=30) == 0
    finally:
        for each in (caller, agent):
            each.stop()
        worker.stop()
