"""SIPp callers against real workers: our pcap of a spoken request and of RFC 4733 keys, played by SIPp
into a real `ivr serve --sip` (Rasa, Whisper, pyttsx3), understood as the caller meant; and `ivr bench
cluster`, whose figures are a benchmark's, so only the shape of its report is checked, never timings."""
import re
import socket

import pytest

from ivr.accounts import seed_demo
from ivr.config import Settings
from ivr.records.store import CallRecords, database_url
from ivr.tools.caller_voices import parse_voice
from ivr.tools.rtp_pcap import Keys, Silence, write_pcap
from ivr.tools.sipp import Caller, Pause, Play, Sipp
from tests.conftest import ivr_command
from tests.console_helpers import wait_until
from tests.sip_server import Served

pytestmark = pytest.mark.slow


def free_port(kind: int = socket.SOCK_DGRAM) -> int:
    with socket.socket(socket.AF_INET, kind) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def worker(trained_model, tmp_path_factory):
    var = tmp_path_factory.mktemp("sipp-worker")
    seed_demo(Settings(var_dir=var))
    served = Served(free_port(), var, max_calls=2, log=var / "serve.log")
    yield served
    served.stop()


def records_of(var, number: str):
    records = CallRecords(database_url(Settings(var_dir=var)))
    return [r for r in records.calls() if r["caller_number"] == number]


def test_a_sipp_caller_asks_for_the_balance_in_our_pcap_and_keys_the_account_number(worker, tmp_path):
    request = tmp_path / "request.pcap"
    spoken = write_pcap(request, [Silence(0.2), parse_voice("flite:slt").speak("What is my balance?"), Silence(1.0)])
    keys = tmp_path / "keys.pcap"
    keyed = write_pcap(keys, [Keys("48151623#"), Silence(0.4)])
    # Pauses long enough for the greeting and each reply to end, so nothing barges in on the bot.
    caller = Caller("balance", (Pause(8), Play(request, spoken), Pause(5), Play(keys, keyed), Pause(6)), "pcap")
    host, port = worker.address
    run = Sipp(caller, f"{host}:{port}", tmp_path / "sipp", calls=1, rate=1, limit=1,
               sip_port=free_port(), media_port=free_port()).start().wait(timeout=120)

    assert (run.successful, run.failed) == (1, 0), run.errors[-2000:] + worker.log_path.read_text()[-3000:]
    call = run.calls["pcap-1"]
    assert call.invited <= call.answered <= call.ended
    records = wait_until(lambda: records_of(worker.var_dir, "pcap-1"), timeout=20)
    assert records, "the worker kept no record of the SIPp call"
    # What the caller said and keyed, in order (a no-input reprompt the bot may give first is not the pcaps')
    turns = [t for t in records[0]["turns"] if t["kind"] != "no_input"]
    assert [t["kind"] for t in turns] == ["speech", "dtmf"], records[0]["turns"]
    assert turns[0]["intent"] == "check_balance", turns[0]
    assert "account number" in " ".join(turns[0]["bot"])
    assert turns[1]["heard"] == "48151623"  # the keys arrived as keys, each once
    assert "4 8 1 5 1 6 2 3" in " ".join(turns[1]["bot"])
    assert turns[0]["latency"]["first_audio"] > 0  # the worker timed its answer, which the benchmark reads


def test_the_cluster_benchmark_prints_the_calibration_the_steps_and_what_a_killed_worker_left(trained_model):
    # one step of the ramp: each step is ~25 s of SIPp calls, and CI must stay under 30 minutes
    done = ivr_command("bench", "cluster", "--workers", "2", "--max", "1", timeout=1200)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.splitlines()

    assert lines[0].startswith("calibration: whisper tiny.en decodes"), lines[0]
    rows = {int(m[1]): m.groups() for m in map(STEP_ROW.match, lines) if m}
    assert sorted(rows) == [1], done.stdout
    for calls, (_, answered, completed, failed) in rows.items():
        assert (int(answered), int(completed), int(failed)) == (calls, calls, 0), done.stdout
    failover = "\n".join(lines[next(k for k, line in enumerate(lines) if line.startswith("failover: worker")):])
    assert re.search(r"failover: worker \S+ of 2 killed \(SIGKILL\) mid load", failover), done.stdout  # a worker, not the console
    assert "new calls:" in failover, done.stdout
    assert int(re.search(r"the dead worker's calls: (\d+) cut off", failover)[1]) >= 1, done.stdout  # it held some
    assert "; 0 still waiting" in failover, done.stdout  # the dead worker's callers do not linger in the queue


# calls, calls/s, at once, answered, done, failed, ...: the ramp's rows
STEP_ROW = re.compile(r"^\s*(\d+)\s+[\d.]+\s+\d+\s+(\d+)\s+(\d+)\s+(\d+)\s")
