"""A long-running `ivr` command as an operator runs it (`ivr serve`, `ivr cluster`): what it prints is
watched line by line, so a test waits for "ready" or "drained" with a deadline instead of a guessed sleep."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Optional

ROOT = Path(__file__).resolve().parent.parent


class Running:
    def __init__(self, args: list[str], log: Path, env: Optional[dict] = None):
        self.log_path = log
        self._log = open(log, "wb")
        self.lines: list[str] = []
        self._read_all = False
        self._changed = threading.Condition()
        ivr = Path(sys.executable).parent / "ivr"
        self.process = subprocess.Popen([str(ivr), *args], stdout=subprocess.PIPE, stderr=self._log,
                                        env=dict(os.environ, **(env or {})), cwd=ROOT, start_new_session=True)
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for raw in self.process.stdout:
            with self._changed:
                self.lines.append(raw.decode(errors="replace").rstrip("\n"))
                self._changed.notify_all()
        with self._changed:
            self._read_all = True  # the process has closed its output: nothing more will be printed
            self._changed.notify_all()

    def printed(self, pattern: str, timeout: float = 60, after: int = 0) -> re.Match:
        """The first printed line (from line `after` on) matching `pattern`, waited for up to `timeout` s."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for line in self.lines[after:]:
                    if match := re.search(pattern, line):
                        return match
                left = deadline - time.monotonic()
                if left <= 0 or self._read_all:
                    raise AssertionError(f"{pattern!r} was never printed; printed: {self.lines[-20:]}; "
                                         f"log: {self.log()[-3000:]}")
                self._changed.wait(min(left, 0.5))

    def signal(self, signum: int) -> None:
        self.process.send_signal(signum)

    def exited(self, timeout: float) -> int:
        return self.process.wait(timeout)

    def log(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")

    def stop(self, wait: float = 30) -> None:
        """SIGTERM, and SIGKILL to the whole process group if it is still there after `wait` seconds."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(wait)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self._log.close()
