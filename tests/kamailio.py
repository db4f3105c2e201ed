"""`ivr cluster` as the cluster tests run it: Kamailio (Debian's, a real one) in front of `ivr serve` workers
on loopback ports of their own, watched through what the cluster prints and what Kamailio logs."""
from __future__ import annotations

import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from tests.running import Running
from tests.sip_baresip import free_port
from tests.sip_server import end_process


def require() -> None:
    """A missing kamailio is a failure to set up, never a quietly skipped test."""
    if not (shutil.which("kamailio") or Path("/usr/sbin/kamailio").is_file()):
        pytest.fail("kamailio is not installed: run `make setup` (apt-get install kamailio)", pytrace=False)


class Cluster(Running):
    def __init__(self, workers: int, var: Path, env: dict, flags: tuple = ()):
        self.sip_port, self.var = free_port(), var
        super().__init__(["cluster", "--workers", str(workers), "--sip", f"127.0.0.1:{self.sip_port}",
                          "--port", "0", *flags], log=var / "cluster.log", env={"IVR_VAR": str(var), **env})
        self.env = {"IVR_VAR": str(var), **env}
        ready = self.printed(r"ivr cluster: ready .* console on (\S+)", timeout=600)  # each worker loads its bot
        self.console = ready[1]
        self.ready_at = next(index for index, line in enumerate(self.lines) if "ivr cluster: ready" in line)
        self.kamailio_pid = int(self.printed(r"Kamailio \(pid (\d+)\)")[1])
        self.uri = f"sip:ivr@127.0.0.1:{self.sip_port}"

    @property
    def workers(self) -> dict[str, tuple[int, int]]:
        """Each worker's (pid, SIP port), the latest: the cluster starts a stopped worker again."""
        return {match[1]: (int(match[2]), int(match[3])) for match in (
            re.search(r"ivr cluster: (worker-\d+) \(pid (\d+)\) on sip:127\.0\.0\.1:(\d+)", line)
            for line in list(self.lines)) if match}

    def pid(self, worker: str) -> int:
        return self.workers[worker][0]

    def every_pid(self) -> set[int]:
        """Every process the cluster said it started: Kamailio, the console, each worker and its restarts."""
        return {int(match[1]) for match in (re.search(r"ivr cluster: \S+ \(pid (\d+)\)", line)
                                            for line in list(self.lines)) if match}

    def all_up(self, timeout: float = 300) -> None:
        """Wait until Kamailio sends calls to every worker again (a test may find one stopped or restarting)."""
        deadline = time.monotonic() + timeout
        while True:
            up = dict.fromkeys(self.workers, True)
            for line in list(self.lines)[self.ready_at:]:
                if said := re.search(r"ivr cluster: (?:Kamailio finds )?(worker-\d+) (up|down|stopped)", line):
                    up[said[1]] = said[2] == "up"
            if all(up.values()):
                return
            assert time.monotonic() < deadline, f"workers not up: {up}; printed: {self.lines[-10:]}"
            time.sleep(0.5)

    def worker_of(self, caller: str, timeout: float = 10) -> str:
        """The worker Kamailio last sent this caller's call to (its log says so as it relays the INVITE)."""
        by_port = {port: name for name, (_, port) in self.workers.items()}
        deadline = time.monotonic() + timeout
        while True:
            sent = re.findall(rf"from {caller} to worker sip:127\.0\.0\.1:(\d+)", self.proxy_log())
            if sent:
                return by_port[int(sent[-1])]
            assert time.monotonic() < deadline, f"Kamailio never sent {caller}'s call anywhere"
            time.sleep(0.2)

    def proxy_log(self) -> str:
        return (self.var / "cluster" / "kamailio.log").read_text(errors="replace")


class Proxy:
    """Kamailio alone, with deploy/kamailio/kamailio.cfg and lists of the test's making, started by the
    same command line `ivr cluster` uses: the edge (allow list, flood limit) without loading any bot."""

    def __init__(self, folder: Path, trunks: list[str], callers: list[str], workers=()):
        from ivr.cluster import kamailio as proxy

        folder.mkdir(parents=True, exist_ok=True)
        proxy.render_lists(folder, list(workers), trunks, callers)
        self.port, self.log_path = free_port(), folder / "kamailio.log"
        self._log = open(self.log_path, "wb")
        self.process = subprocess.Popen(proxy.command(proxy.binary(), proxy.CONFIG, folder, "127.0.0.1", self.port),
                                        stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        end_process(self.process, wait=10)
        self._log.close()
