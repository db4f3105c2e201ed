"""`ivr bench cluster`: SIPp callers through Kamailio into `ivr cluster` workers, the whole path a contact
centre's calls take past one machine.

The callers (ivr/tools/sipp.py) play our own pcaps: a request spoken by a caller voice ("What is my
balance?", flite slt, through the phone channel, as G.711 RTP) and the account number keyed as RFC 4733
events. The ramp places 1, 2, 4, ... up to --max calls at once, --rate a second, and each step
reports the calls placed per second, the most calls up at once (from SIPp's own log of each call),
SIPp's failed calls, and end of the caller's speech -> first bot audio (p50/p95): SIPp cannot hear, so
the figure is the one each worker records per turn (`latency.first_audio` in the call records: the
endpoint silence plus recognition, dialog and voice, up to the moment the reply's first audio is
handed to the call's RTP pacer, at most one 20 ms tick before it leaves). Then the failover step
(ivr/tools/bench_failover.py) kills a worker with SIGKILL in the middle of calls.
"""
from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Optional

from ivr.config import Settings
from ivr.errors import UserError
from ivr.tools.bench import percentiles
from ivr.tools.bench_calls import ramp
from ivr.tools.rtp_pcap import Keys, Silence, write_pcap
from ivr.tools.sipp import Caller, Pause, Play, Sipp

CALL_RATE = 4.0  # new calls a second within a step (--rate): a burst, as when a queue of callers is let in
TARGET_P95 = 1.0
GREETING_S = 8.0  # the greeting plays about 7 s; the caller speaks after it (SIPp cannot hear it end)
REPLY_S = 5.0  # "Please say or key in your 8 digit account number." and a margin
READBACK_S = 6.0  # the account number read back and the PIN question
CLUSTER_START_S = 600.0  # every worker loads Whisper, Rasa and the voice; on two busy cores that takes minutes
RECORDS_WAIT_S = 30.0


@dataclass(frozen=True)
class Sounds:
    """The callers' pcaps, with how long each plays."""
    request: Play
    keys: Play
    agent: Play
    said: str = "What is my balance?"
    keyed: str = "48151623#"


def render_sounds(folder: Path) -> Sounds:
    """The pcaps, rendered before the cluster loads (flite's slt voice, as the shipped scenarios use)."""
    from ivr.tools.caller_voices import parse_voice

    voice = parse_voice("flite:slt")
    plays = {}
    for name, parts in (("request", [Silence(0.2), voice.speak(Sounds.said), Silence(1.0)]),
                        ("keys", [Keys(Sounds.keyed), Silence(0.4)]),
                        ("agent", [Silence(0.2), voice.speak("Can I speak to a real person please?"), Silence(1.0)])):
        path = folder / f"{name}.pcap"
        plays[name] = Play(path, write_pcap(path, parts))
    return Sounds(**plays)


def balance_caller(sounds: Sounds, prefix: str) -> Caller:
    return Caller("balance", (Pause(GREETING_S), sounds.request, Pause(REPLY_S), sounds.keys, Pause(READBACK_S)),
                  prefix)


def free_port(kind: int = socket.SOCK_DGRAM) -> int:
    with socket.socket(socket.AF_INET, kind) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Cluster:
    """`ivr cluster` as an operator runs it, in its own var folder: ready when it says so, its workers
    found among its processes, stopped with SIGTERM."""

    def __init__(self, workers: int, most: int, var: Path, env: dict[str, str]):
        self.sip_port, self.console_port = free_port(), free_port(socket.SOCK_STREAM)
        # Room on every worker for all the calls the failover step leaves to the last one standing (the
        # load, the callers on hold, a few new calls): the benchmark measures the machine, not a cap.
        room = most + 2 * workers + 4
        self.command = [str(Path(sys.executable).parent / "ivr"), "cluster", "--workers", str(workers),
                        "--sip", f"127.0.0.1:{self.sip_port}", "--port", str(self.console_port),
                        "--max-calls", str(room)]
        self.env, self.log_path = env, var / "cluster.log"
        self.process: Optional[subprocess.Popen] = None

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.sip_port}"

    def start(self) -> "Cluster":
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen(self.command, stdout=subprocess.PIPE, stderr=log, env=self.env,
                                        start_new_session=True)
        log.close()
        ready = threading.Event()
        threading.Thread(target=self._read, args=(ready,), daemon=True).start()  # its pipe must never fill
        deadline = time.monotonic() + CLUSTER_START_S
        while not ready.wait(1.0) and self.process.poll() is None and time.monotonic() < deadline:
            pass
        if not ready.is_set():
            self.stop()
            raise UserError(f"`ivr {' '.join(self.command[1:])}` did not say it was ready: "
                            f"{self.log_path.read_text(errors='replace')[-1500:]}")
        return self

    def _read(self, ready: threading.Event) -> None:
        for line in self.process.stdout:
            if line.startswith(b"ivr cluster: ready"):  # not "stopped before the cluster was ready"
                ready.set()

    def workers(self) -> list[int]:
        """The process ids of its workers: the `ivr serve --sip` processes under it (the agents' console
        may be an `ivr serve` of its own, with no phone line)."""
        return [pid for pid in _descendants(self.process.pid) if {b"serve", b"--sip"} <= set(_cmdline(pid).split(b"\0"))]

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, 9)
                self.process.wait()


def _descendants(root: int) -> list[int]:
    """Every process under `root`, from each process's parent in /proc."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        try:
            parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):  # not a process, or gone meanwhile
            continue
    found, frontier = [], [root]
    while frontier:
        frontier = [pid for pid, parent in parents.items() if parent in frontier]
        found += frontier
    return found


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


class Bench:
    """One run: the cluster, the sounds, where SIPp keeps its files, and the workers' call records."""

    def __init__(self, cluster: Cluster, sounds: Sounds, folder: Path, settings: Settings, rate: float = CALL_RATE):
        from ivr.records.store import CallRecords, database_url

        self.cluster, self.sounds, self.folder, self.settings, self.rate = cluster, sounds, folder, settings, rate
        self.records = CallRecords(database_url(settings, cluster.env))
        self.run_id = secrets.token_hex(2)  # caller numbers unique to this run, in a shared database too
        self.began = datetime.now(timezone.utc)

    def sipp(self, caller: Caller, calls: int, rate: float) -> Sipp:
        return Sipp(caller, self.cluster.target, self.folder / caller.number_prefix, calls=calls, rate=rate,
                    limit=calls, sip_port=free_port(), media_port=free_port())

    def records_of(self, prefix: str, expected: int) -> list[dict[str, Any]]:
        """The workers' records of this prefix's calls, once `expected` are there (a record is written
        as its call ends) or RECORDS_WAIT_S has passed."""
        deadline = time.monotonic() + RECORDS_WAIT_S
        while True:
            found = [r for r in self.records.calls(self.began) if (r["caller_number"] or "").startswith(prefix + "-")]
            if len(found) >= expected or time.monotonic() > deadline:
                return found
            time.sleep(0.5)


def step(bench: Bench, calls: int, name: str = "s") -> dict[str, Any]:
    """`calls` callers, the bench's rate a second; SIPp's outcome and the workers' timing of each turn."""
    prefix = f"b{bench.run_id}{name}{calls}"
    rate = min(float(calls), bench.rate)
    began = time.monotonic()
    run = bench.sipp(balance_caller(bench.sounds, prefix), calls, rate).start().wait(timeout=calls / rate + 120)
    ended = [c for c in run.calls.values() if c.ended is not None]
    records = bench.records_of(prefix, len(ended))
    turns = [t for r in records for t in r["turns"]]
    workers: dict[str, int] = {}
    for record in records:
        workers[record.get("worker") or "?"] = workers.get(record.get("worker") or "?", 0) + 1
    return {"calls": calls, "calls_per_second": rate, "at_once": at_once(run.calls.values()),
            "answered": sum(c.answered is not None for c in run.calls.values()), "completed": run.successful,
            "failed": run.failed, "wall_seconds": round(time.monotonic() - began, 1),
            "latency": _first_audio(turns, "speech"), "keypad_latency": _first_audio(turns, "dtmf"),
            "recorded": len(records), "by_worker": workers, "problems": run.problems()[:5]}


def _first_audio(turns: list[dict[str, Any]], kind: str) -> dict[str, float]:
    return percentiles(t["latency"]["first_audio"] for t in turns if t["kind"] == kind and "first_audio" in t["latency"])


def at_once(calls) -> int:
    """The most calls up at the same moment, from when each was answered to when it ended (or was lost)."""
    moments = []
    for call in calls:
        if call.answered is not None:
            moments += [(call.answered, 1), (call.ended if call.ended is not None else float("inf"), -1)]
    most = up = 0
    for _, change in sorted(moments):
        up += change
        most = max(most, up)
    return most


def held_within_target(steps: list[dict[str, Any]]) -> Optional[int]:
    """The largest step such that it and every smaller one had every call completed and p95 under target."""
    held = None
    for found in steps:
        latency = found["latency"]
        if found["failed"] or found["completed"] < found["calls"] or not latency.get("n") or latency["p95"] >= TARGET_P95:
            break
        held = found["calls"]
    return held


def bench_cluster(settings: Settings, workers: int, most: int, as_json: bool,
                  calibration: Optional[dict] = None, rate: float = CALL_RATE) -> int:
    from ivr.tools.bench_failover import failover
    from ivr.tools.bench_report import print_report, relative

    with tempfile.TemporaryDirectory(prefix="ivr-bench-cluster-") as scratch:
        folder = Path(scratch)
        sounds = render_sounds(folder)  # before the workers load, so the caller's voice is not timed
        cluster = Cluster(workers, most, *_var(folder / "var"))
        cluster.start()
        try:
            bench = Bench(cluster, sounds, folder / "sipp", Settings(var_dir=folder / "var"), rate)
            # A worker's first call is slower (first use of the recognizer, the dialog, the voice):
            # one call a worker first (round-robin), outside the ramp, as a caller-facing service is warmed.
            warm_up = step(bench, workers, name="w")
            steps = [step(bench, n) for n in ramp(most)]
            held = held_within_target(steps)
            report = {"calibration": calibration, "cluster": " ".join(cluster.command[1:]), "cores": os.cpu_count(),
                      "caller": {"said": sounds.said, "keyed": sounds.keyed, "voice": "flite:slt"},
                      "target_p95": TARGET_P95, "warm_up": warm_up, "steps": steps, "most_calls_within_target": held,
                      "failover": failover(bench, held or most)}
        finally:
            cluster.stop()
    for found in report["steps"]:
        found["relative_to_calibration"] = relative(found, calibration)
    if as_json:
        print(json.dumps(report, indent=2, default=str))
    else:
        print_report(report)
    return 0


def _var(var: Path) -> tuple[Path, dict[str, str]]:
    """The cluster's own var folder; its databases are SQLite files there with the demo accounts, unless
    IVR_DATABASE_URL names a shared database (used as it is)."""
    from ivr.accounts import seed_demo

    var.mkdir()
    env = dict(os.environ, IVR_VAR=str(var))
    if not env.get("IVR_DATABASE_URL"):
        seed_demo(Settings(var_dir=var))
    return var, env
