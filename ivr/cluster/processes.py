"""One process `ivr cluster` started (Kamailio or a worker): its own process group, so stopping it stops
everything it forked; the kernel ends it if the cluster itself dies (no orphans); what it says goes to its
log file and, line by line, to whoever watches."""
from __future__ import annotations

import asyncio
import ctypes
import os
import signal
from pathlib import Path
from typing import Callable, Optional

PR_SET_PDEATHSIG = 1
_LIBC = ctypes.CDLL(None, use_errno=True)  # loaded before any fork: the child only makes one call
LINE_LIMIT = 1 << 20


def _die_with_parent() -> None:
    _LIBC.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)  # an `ivr cluster` killed with SIGKILL leaves nothing behind


class Child:
    def __init__(self, name: str, argv: list[str], log: Path, env: dict[str, str], watched: str = "stdout"):
        """`watched`: the stream whose lines are offered to the watcher (stdout for a worker, stderr for
        Kamailio, which logs there with -E); the other goes straight to the log file."""
        self.name, self.argv, self.log_path, self.env, self.watched = name, argv, log, env, watched
        self.process: Optional[asyncio.subprocess.Process] = None
        self._reader: Optional[asyncio.Task] = None

    @property
    def pid(self) -> int:
        return self.process.pid if self.process else 0

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.returncode is None

    async def start(self, heard: Callable[["Child", str], None]) -> "Child":
        log = open(self.log_path, "ab", buffering=0)
        piped = asyncio.subprocess.PIPE
        self.process = await asyncio.create_subprocess_exec(
            *self.argv, stdin=asyncio.subprocess.DEVNULL, env=self.env, limit=LINE_LIMIT, start_new_session=True,
            preexec_fn=_die_with_parent, stdout=piped if self.watched == "stdout" else log,
            stderr=piped if self.watched == "stderr" else log)
        stream = self.process.stdout if self.watched == "stdout" else self.process.stderr
        self._reader = asyncio.create_task(self._read(stream, log, heard))
        return self

    async def _read(self, stream: asyncio.StreamReader, log, heard) -> None:
        try:
            while line := await stream.readline():
                log.write(line)
                heard(self, line.decode(errors="replace").rstrip())
        finally:
            log.close()

    async def exited(self) -> int:
        return await self.process.wait()

    def describe_exit(self) -> str:
        code = self.process.returncode
        return f"killed by {signal.Signals(-code).name}" if code < 0 else f"exit status {code}"

    def signal(self, signum: int) -> None:
        if self.running:
            try:
                os.killpg(self.process.pid, signum)
            except ProcessLookupError:
                pass

    async def stop(self, grace: float) -> None:
        """SIGTERM to its whole group; SIGKILL to whatever is left after `grace` seconds."""
        if self.process is None:
            return
        self.signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(self.process.wait(), grace)
        except asyncio.TimeoutError:
            pass
        try:
            os.killpg(self.process.pid, signal.SIGKILL)  # what it forked and left behind, too
        except (ProcessLookupError, PermissionError):
            pass
        await self.process.wait()
        if self._reader:
            await asyncio.wait({self._reader}, timeout=5)

    def tail(self, lines: int = 5) -> str:
        try:
            text = self.log_path.read_text(errors="replace").strip().splitlines()
        except OSError:
            return ""
        return " | ".join(text[-lines:])
