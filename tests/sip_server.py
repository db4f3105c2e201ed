"""`ivr serve` with the SIP line, as the SIP tests run it: a real process, its RSS readable."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


class Served:
    """`ivr serve --sip 127.0.0.1:PORT --port 0 --max-calls N [more flags]` with IVR_VAR=`var_dir`, until stopped."""

    def __init__(self, port: int, var_dir: Path, max_calls: int, log: Path, flags: tuple = ()):
        self.var_dir, self.log_path = var_dir, log
        self.env = dict(os.environ, IVR_VAR=str(var_dir))
        ivr = Path(sys.executable).parent / "ivr"
        self._log = open(log, "wb")
        self.process = subprocess.Popen([str(ivr), "serve", "--port", "0", "--sip", f"127.0.0.1:{port}",
                                         "--max-calls", str(max_calls), *flags],
                                        stdout=subprocess.PIPE, stderr=self._log, env=self.env, cwd=ROOT)
        self.address = self._listening(timeout=120)

    def _listening(self, timeout: float) -> tuple[str, int]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = self.process.stdout.readline().decode(errors="replace")
            if match := re.search(r"SIP line: sip:([\d.]+):(\d+)", line):
                threading.Thread(target=self.process.stdout.read, daemon=True).start()  # never let its pipe fill
                return match[1], int(match[2])
            if not line and self.process.poll() is not None:
                break
        self.stop()
        raise RuntimeError(f"the SIP line did not start: {self.log_path.read_text(errors='replace')[-3000:]}")

    def rss_kb(self) -> int:
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        return int(re.search(r"VmRSS:\s+(\d+) kB", status)[1])

    def stop(self) -> None:
        end_process(self.process, wait=20)
        self._log.close()


def end_process(process: subprocess.Popen, wait: float) -> None:
    """SIGTERM, and SIGKILL if it is still there after `wait` seconds."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(wait)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
