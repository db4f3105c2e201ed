"""One process `ivr cluster` started (Kamailio or a worker): its own process group, so stopping it stops
everything it forked; the kernel ends it if the cluster itself dies (no orphans); what it says goes to its
log file and, line by line, to whoever watches."""
from __future__ import annotations

import asyncio
import ctypes
import logging
import os
import signal
from pathlib import Path
from typing import Callable, Optional

PR_SET_PDEATHSIG = 1
_LIBC = ctypes.CDLL(None, use_errno=True)  # loaded before any fork: the child only makes one call
LINE_LIMIT = 1 << 20  # longer lines go to the log only
CHUNK = 1 << 16
logger = logging.getLogger(__name__)


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
            *self.argv, stdin=asyncio.subprocess.DEVNULL, env=self.env, start_new_session=True,
            preexec_fn=_die_with_parent, stdout=piped if self.watched == "stdout" else log,
            stderr=piped if self.watched == "stderr" else log)
        stream = self.process.stdout if self.watched == "stdout" else self.process.stderr
        self._reader = asyncio.create_task(self._read(stream, log, heard))
        return self

    async def _read(self, stream: asyncio.StreamReader, log, heard) -> None:
        """Copy everything to the log and offer each line to the watcher, never stopping before the child
        does: a child whose pipe fills up blocks (Kamailio would stop relaying calls). A line too long, a
        watcher that fails (its print to a closed pipe) or a full disk cost that line, not the reading."""
        pending, failed, overlong = b"", set(), False
        try:
            while chunk := await stream.read(CHUNK):
                self._guarded("writing its log", failed, log.write, chunk)
                *lines, pending = (pending + chunk).split(b"\n")
                if lines and overlong:  # the end of a line too long to offer
                    lines, overlong = lines[1:], False
                if len(pending) > LINE_LIMIT:
                    pending, overlong = b"", True
                for line in lines:
                    self._guarded("passing on what it said", failed, heard, self,
                                  line.decode(errors="replace").rstrip())
        finally:
            log.close()

    def _guarded(self, doing: str, failed: set[str], step: Callable[..., object], *args) -> None:
        try:
            step(*args)
        except Exception as error:  # noqa: BLE001 - said once; the pipe is still read to its end
            if doing not in failed:
                failed.add(doing)
                logger.warning("%s: %s failed (%s); its output is still read", self.name, doing, error)

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
