"""`ivr cluster`: real Kamailio in front of three `ivr serve` workers sharing one PostgreSQL database, with
baresip phones as the callers: calls spread over the workers, a worker killed with SIGKILL costs its caller
only the failover time and is started again (the agents' console, a process of its own, stays), a draining
worker finishes its caller, gets no new ones and is replaced, and stopping the cluster leaves no process
behind. One cluster for the module (each worker loads the whole bot); each test first waits for every worker
to be up, so none depends on what another did."""
import asyncio
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from ivr.cluster.processes import Child
from ivr.cluster.run import Plan, plan_workers
from tests import kamailio
from tests.conftest import ivr_command
from tests.console_helpers import AgentBrowser, wait_until
from tests.eventually import records_of
from tests.sip_baresip import Baresip, available

pytestmark = pytest.mark.slow

FAILOVER_S = 2.0  # FAILOVER_MS in deploy/kamailio/kamailio.cfg


@pytest.fixture(scope="module")
def cluster(trained_model, postgres, tmp_path_factory):
    kamailio.require()
    if not available():
        pytest.fail("baresip is not installed: run `make setup` (apt-get install baresip)", pytrace=False)
    var = tmp_path_factory.mktemp("cluster-var")
    database = postgres.create_database()
    running = kamailio.Cluster(3, var, env={"IVR_DATABASE_URL": postgres.url(database)})
    yield running
    running.stop()
    postgres.drop_database(database)


@pytest.fixture(scope="module")
def quiet(tmp_path_factory) -> Path:
    """A caller who listens: a minute of silence as the phone's microphone."""
    path = tmp_path_factory.mktemp("cluster-voice") / "quiet.wav"
    subprocess.run(["sox", "-n", "-r", "8000", "-c", "1", "-b", "16", str(path), "trim", "0", "60"], check=True)
    return path


@pytest.fixture(scope="module")
def asks(quiet) -> Path:
    """A caller asking for a person (flite), then listening to the hold for a minute."""
    folder = quiet.parent
    spoken, narrow, path = folder / "asks.wav", folder / "asks-8k.wav", folder / "asks-then-quiet.wav"
    subprocess.run(["flite", "-voice", "slt", "-t", "I want to talk to an agent", "-o", str(spoken)], check=True)
    subprocess.run(["sox", str(spoken), "-r", "8000", "-c", "1", "-b", "16", str(narrow)], check=True)
    subprocess.run(["sox", str(narrow), str(quiet), str(path)], check=True)
    return path


@pytest.fixture
def phones(tmp_path, quiet):
    started = []

    def phone(user: str) -> Baresip:
        started.append(Baresip(tmp_path / user, quiet, user=user, rtp_ports="30000-30999"))
        return started[-1]

    yield phone
    for each in started:
        each.stop()


def greeted(phone: Baresip, cluster, timeout: float = 20) -> None:
    """The caller rings the cluster, is answered and hears the bot's greeting to its end."""
    phone.dial(cluster.uri)
    answered = phone.wait_for("CALL_ESTABLISHED", "CALL_CLOSED", timeout=timeout)
    assert answered["type"] == "CALL_ESTABLISHED", answered
    phone.wait_for_the_bot_to_finish()


def hang_up(phone: Baresip) -> None:
    phone.hang_up()
    phone.wait_for("CALL_CLOSED", timeout=10)


def test_without_kamailio_the_cluster_says_how_to_install_it_and_starts_nothing(tmp_path):
    refused = ivr_command("cluster", "--kamailio", "/nowhere/kamailio", env={"IVR_VAR": str(tmp_path)})
    assert refused.returncode == 2
    assert refused.stderr.strip().splitlines() == [
        "ivr: no kamailio program at /nowhere/kamailio: run `make setup` (apt-get install kamailio)"]
    assert not refused.stdout and not (tmp_path / "cluster").exists()


def test_every_worker_gets_a_sip_port_of_its_own(tmp_path):
    plan = Plan(workers=300, host="127.0.0.1", port=5060, console_host="127.0.0.1", console_port=0, max_calls=1,
                rtp_low=10000, rtp_high=19999, trunks=[], callers=[], var_dir=tmp_path)
    ports = [worker.sip_port for worker in plan_workers(plan)]
    assert len(set(ports)) == len(ports), sorted(port for port in ports if ports.count(port) > 1)


def test_a_failing_watcher_or_an_endless_line_never_stops_the_pipe_being_read(tmp_path):
    """Kamailio blocks writing its log once nobody reads its pipe, and then relays no call: so whatever
    goes wrong with one line (the operator's `| tee` gone, a line too long), the rest is still read."""
    said = "import sys; w = sys.stdout.write; w('x' * 3_000_000 + '\\n'); " \
           "[w(f'line {i} ' + 'y' * 1000 + '\\n') for i in range(3000)]; w('last\\n')"
    heard: list[str] = []

    def watcher(child, line: str) -> None:
        heard.append(line)
        if len(heard) == 2:
            raise BrokenPipeError("the operator's terminal is gone")

    async def run() -> int:
        child = await Child("talker", [sys.executable, "-c", said], tmp_path / "talker.log", dict(os.environ)).start(
            watcher)
        status = await asyncio.wait_for(child.exited(), 60)  # blocks forever if the pipe is not read
        await child.stop(1)
        return status

    assert asyncio.run(run()) == 0
    assert heard[0] == "line 0 " + "y" * 1000 and heard[-1] == "last" and len(heard) == 3001, heard[:2]
    assert (tmp_path / "talker.log").stat().st_size == 3_000_001 + sum(
        len(f"line {i} ") + 1001 for i in range(3000)) + 5


def test_calls_are_spread_over_the_workers_and_one_console_shows_every_workers_callers(cluster, phones, asks):
    cluster.all_up()
    added = ivr_command("agents", "add", "watcher", "--skills", "en,billing", "--password-stdin", env=cluster.env,
                        input="hold the line please\n")
    assert added.returncode == 0, added.stderr
    agent = AgentBrowser(cluster.console)
    assert agent.login("watcher", "hold the line please").ok
    first, second = phones("spread-1"), phones("spread-2")
    for phone in (first, second):  # round robin: the second caller goes to the next worker
        greeted(phone, cluster)
        phone.speak(asks)  # "I want to talk to an agent": queued by the worker the caller is on
    queued = wait_until(lambda: len(agent.view()["queue"]) == 2 and agent.view()["queue"], timeout=90)
    assert queued, f"the console shows {agent.view()['queue']}"
    hang_up(first)
    hang_up(second)
    found = records_of(cluster.env, "spread-1", "spread-2")
    workers = {found["spread-1"]["worker"], found["spread-2"]["worker"]}
    assert len(workers) == 2 and workers <= set(cluster.workers), found
    assert {row["id"] for row in queued} == {record["queue_entry"] for record in found.values()}, (queued, found)
    assert all(record["channel"] == "sip" and record["outcome"] == "escalated" for record in found.values())


def test_a_killed_worker_costs_its_caller_the_failover_time_and_is_started_again(cluster, phones):
    """worker-1 too: the agents' console is a process of its own and still answers."""
    cluster.all_up()
    callers = [phones(f"after-kill-{index}") for index in range(3)]  # round robin: one is sent to the dead worker
    dead, port = cluster.workers["worker-1"]
    printed = len(cluster.lines)
    os.kill(dead, signal.SIGKILL)
    for phone in callers:  # at once, before a probe can find the worker gone (each probe waits FAILOVER_S)
        phone.dial(cluster.uri)
    for phone in callers:
        answered = phone.wait_for("CALL_ESTABLISHED", "CALL_CLOSED", timeout=FAILOVER_S + 10)
        assert answered["type"] == "CALL_ESTABLISHED", answered
    failed_over = re.search(rf"worker down: sip:127\.0\.0\.1:{port} \(did not answer call (\S+);", cluster.proxy_log())
    assert failed_over, "Kamailio sent no call to the dead worker: no failover was tried"
    assert re.search(rf"call {re.escape(failed_over[1])} from after-kill-\d to worker \S+ instead", cluster.proxy_log())
    for phone in callers:
        hang_up(phone)
    assert AgentBrowser(cluster.console).http.get(cluster.console + "login").ok  # the console outlived worker-1
    found = records_of(cluster.env, *(f"after-kill-{index}" for index in range(3)))
    assert {record["worker"] for record in found.values()} <= {"worker-2", "worker-3"}, found
    cluster.printed(r"worker-1 stopped \(killed by SIGKILL\); Kamailio sends its callers to the others; "
                    r"starting it again in 1 s", timeout=10, after=printed)
    cluster.printed(r"Kamailio finds worker-1 up", timeout=300, after=printed)  # it loaded its bot again
    assert cluster.pid("worker-1") != dead
    again = [phones(f"after-restart-{index}") for index in range(3)]  # round robin: one each
    for phone in again:
        greeted(phone, cluster)
        hang_up(phone)
    found = records_of(cluster.env, *(f"after-restart-{index}" for index in range(3)))
    assert "worker-1" in {record["worker"] for record in found.values()}, found


def test_a_draining_worker_finishes_its_caller_gets_no_new_ones_and_is_replaced(cluster, phones):
    cluster.all_up()
    staying = phones("staying")
    staying.dial(cluster.uri)
    staying.wait_for("CALL_ESTABLISHED", timeout=20)
    draining = cluster.worker_of("staying")
    drained_pid, printed = cluster.pid(draining), len(cluster.lines)
    os.kill(drained_pid, signal.SIGUSR1)
    cluster.printed(rf"{draining}: draining {draining}: no new calls, 1 to finish", timeout=20, after=printed)
    cluster.printed(rf"Kamailio finds {draining} down", timeout=20, after=printed)
    newcomers = [phones(f"newcomer-{index}") for index in range(2)]
    for phone in newcomers:
        greeted(phone, cluster)
        hang_up(phone)
    staying.wait_for_the_bot_to_finish()  # the draining worker's caller still hears the bot
    hang_up(staying)
    cluster.printed(rf"{draining}: drained {draining}: no calls left, stopping", timeout=30, after=printed)
    cluster.printed(rf"{draining} stopped \(exit status 0\); starting a fresh one", timeout=30, after=printed)
    replaced = cluster.printed(rf"ivr cluster: {draining} \(pid (\d+)\)", timeout=10, after=printed)
    assert int(replaced[1]) != drained_pid
    found = records_of(cluster.env, "staying", "newcomer-0", "newcomer-1")
    assert found["staying"]["worker"] == draining
    assert draining not in {found["newcomer-0"]["worker"], found["newcomer-1"]["worker"]}, found


def test_stopping_the_cluster_leaves_no_process_behind(cluster):
    groups = cluster.every_pid()  # each child leads a process group of its own (Kamailio forks a dozen)
    cluster.signal(signal.SIGTERM)
    assert cluster.exited(timeout=60) == 0
    cluster.printed("ivr cluster: stopped", timeout=5)
    left = [pid for pid in _processes() if _group(pid) in groups]
    assert not left, f"left running: {[_command(pid) for pid in left]}"


def _processes() -> list[int]:
    return [int(name) for name in os.listdir("/proc") if name.isdigit()]


def _group(pid: int) -> int:
    try:
        return os.getpgid(pid)
    except ProcessLookupError:
        return -1


def _command(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return "?"
