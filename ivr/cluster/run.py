"""Start Kamailio and the workers, say when calls can be taken, stop them all together.

Ready means what a caller needs: every worker has loaded its bot and answers on its SIP port, and
Kamailio's dispatcher has seen each one answer a probe (its "worker up" log line, from the config's
event route), and the agents' console listens (a process of its own: `ivr serve` with no phone line,
no bot, so it outlives any worker). Then the cluster keeps running through a worker's death (Kamailio
sends its callers to the others; that is the point), starts a stopped worker or console again
(ivr/cluster/supervise.py), and stops on Ctrl-C or SIGTERM, or when Kamailio itself is gone.
"""
from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import signal
import socket
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

from ivr.cluster import kamailio
from ivr.cluster.kamailio import Worker
from ivr.cluster.processes import Child
from ivr.cluster.supervise import Supervisor

STOP_GRACE_S = 20.0  # a worker hangs up its calls and closes its stores; Kamailio ends its children
PROXY_SAYS = re.compile(r"worker (up|down): sip:(\S+)")


@dataclass
class Plan:
    """What `ivr cluster` was asked for."""
    workers: int
    host: str
    port: int
    console_host: str
    console_port: int
    max_calls: int
    rtp_low: int
    rtp_high: int
    trunks: list[str]
    callers: list[str]
    var_dir: Path
    config: Path = kamailio.CONFIG
    program: Optional[str] = None  # the kamailio binary, when not the one installed
    secure_cookies: bool = False


@dataclass
class Readiness:
    workers: list[Worker]
    answering: set[str] = field(default_factory=set)  # workers whose SIP line is up
    probed: set[str] = field(default_factory=set)  # workers Kamailio's probes found up
    console: Optional[str] = None

    def ready(self) -> bool:
        names = {worker.name for worker in self.workers}
        return self.console is not None and self.answering >= names and self.probed >= names


def plan_workers(plan: Plan) -> list[Worker]:
    """Loopback SIP ports of their own (or on the proxy's own address), and a share each of the RTP range."""
    host = "127.0.0.1" if plan.host in ("0.0.0.0", "::", "") else plan.host
    share = (plan.rtp_high - plan.rtp_low + 1) // plan.workers // 2 * 2
    return [Worker(f"worker-{index + 1}", host, port,
                   f"{plan.rtp_low + index * share}-{plan.rtp_low + (index + 1) * share - 1}")
            for index, port in enumerate(_free_udp_ports(host, plan.workers))]


def worker_command(plan: Plan, worker: Worker) -> list[str]:
    """`ivr serve` for one worker. Its own console is on a loopback port nobody uses: the agents' console is
    the console process. `--sip` tells a worker's command line from the console's."""
    return [sys.executable, "-m", "ivr.cli", "serve", "--sip", f"{worker.host}:{worker.sip_port}",
            "--worker", worker.name, "--rtp-ports", worker.rtp_ports, "--max-calls", str(plan.max_calls),
            "--sip-trusted-proxy", worker.host, "--allow", f"{worker.host}/32", "--host", "127.0.0.1", "--port", "0"]


def console_command(plan: Plan) -> list[str]:
    """The agents' console alone: `ivr serve` with no phone line loads no bot, and starts in a second or two."""
    return [sys.executable, "-m", "ivr.cli", "serve", "--host", plan.console_host, "--port", str(plan.console_port),
            *(["--secure-cookies"] if plan.secure_cookies else [])]


async def run_cluster(plan: Plan, say: Callable[[str], None]) -> int:
    program = kamailio.binary(plan.program)  # missing: one line, before anything starts
    logs = plan.var_dir / "cluster"
    logs.mkdir(parents=True, exist_ok=True)
    runtime = Path(tempfile.mkdtemp(prefix="ivr-cluster-"))  # short: a control socket's path has ~100 bytes
    workers = plan_workers(plan)
    kamailio.render_lists(runtime, workers, plan.trunks, plan.callers)
    env = dict(os.environ, IVR_VAR=str(plan.var_dir))
    proxy = Child("kamailio", kamailio.command(program, plan.config, runtime, plan.host, plan.port),
                  logs / "kamailio.log", env, watched="stderr")
    console = Child("console", console_command(plan), logs / "console.log", env)
    serving = [Child(worker.name, worker_command(plan, worker), logs / f"{worker.name}.log", env)
               for worker in workers]
    where = {worker.name: f"on {worker.uri}, RTP {worker.rtp_ports}, " for worker in workers}
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stopping.set)
    watch = Watch(workers, say)

    async def start(child: Child) -> None:
        await child.start(watch.heard)
        say(f"ivr cluster: {child.name} (pid {child.pid}) {where.get(child.name, '')}log {child.log_path}")

    try:
        await proxy.start(watch.heard)
        say(f"ivr cluster: Kamailio (pid {proxy.pid}) on udp:{plan.host}:{plan.port}, log {proxy.log_path}")
        for child in [console, *serving]:
            await start(child)
        if not await _until_ready(watch, proxy, [console, *serving], stopping, say):
            return 0 if stopping.is_set() else 1
        say(f"ivr cluster: ready — SIP on {plan.host}:{plan.port}, {plan.workers} workers, "
            f"console on {watch.state.console}")
        watch.supervisor = Supervisor([console, *serving], start, say)
        return await _until_stopped(watch.supervisor, proxy, stopping, say)
    finally:
        say("ivr cluster: stopping")
        await asyncio.gather(*(child.stop(STOP_GRACE_S) for child in [*serving, console, proxy]))
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
        shutil.rmtree(runtime, ignore_errors=True)
        say("ivr cluster: stopped")


class Watch:
    """What the children say, read for readiness and, once ready, passed on to the operator."""

    def __init__(self, workers: list[Worker], say: Callable[[str], None]):
        self.state, self.say, self.live = Readiness(workers), say, False
        self.supervisor: Optional[Supervisor] = None  # once ready: told when a restarted child serves again
        self._by_uri = {worker.uri.removeprefix("sip:"): worker.name for worker in workers}

    def heard(self, child: Child, line: str) -> None:
        if child.name == "kamailio":
            said = PROXY_SAYS.search(line)
            name = self._by_uri.get(said[2]) if said else None
            if name and (said[1] == "up") != (name in self.state.probed):  # a change (a probe and a call may both tell)
                (self.state.probed.add if said[1] == "up" else self.state.probed.discard)(name)
                if self.live:
                    self.say(f"ivr cluster: Kamailio finds {name} {said[1]}")
            return
        serving = line.startswith("SIP line:") or (child.name == "console" and line.startswith("agents' console:"))
        if serving and self.supervisor:
            self.supervisor.up(child.name)
            self.say(f"ivr cluster: {child.name} is serving again ({line})")
        if line.startswith("SIP line:"):
            self.state.answering.add(child.name)
        elif child.name == "console" and (console := re.match(r"agents' console: (\S+)", line)):
            self.state.console = self.state.console or console[1]
        elif self.live and line.startswith("ivr serve:"):
            self.say(f"ivr cluster: {child.name}: {line.removeprefix('ivr serve: ')}")  # draining, drained


async def _until_ready(watch: Watch, proxy: Child, serving: list[Child], stopping: asyncio.Event, say) -> bool:
    while not watch.state.ready():
        if stopping.is_set():
            return False
        gone = next((child for child in [proxy, *serving] if not child.running), None)
        if gone is not None:
            say(f"ivr cluster: {gone.name} stopped before the cluster was ready ({gone.describe_exit()}): "
                f"{gone.tail()} (see {gone.log_path})")
            return False
        await asyncio.sleep(0.2)
    watch.live = True
    return True


async def _until_stopped(supervisor: Supervisor, proxy: Child, stopping: asyncio.Event, say) -> int:
    while not stopping.is_set():
        if not proxy.running:
            say(f"ivr cluster: Kamailio stopped ({proxy.describe_exit()}): {proxy.tail()}; no call can come in")
            return 1
        await supervisor.look()
        try:
            await asyncio.wait_for(stopping.wait(), 0.5)
        except asyncio.TimeoutError:
            pass
    return 0


def _free_udp_ports(host: str, count: int) -> list[int]:
    """`count` different free ports: each probe stays bound until all are chosen, or two could get one port."""
    with contextlib.ExitStack() as probes:
        bound = [probes.enter_context(socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET,
                                                    socket.SOCK_DGRAM)) for _ in range(count)]
        for probe in bound:
            probe.bind((host, 0))
        return [probe.getsockname()[1] for probe in bound]
