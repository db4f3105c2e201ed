"""A real `ivr serve --media-stream --audiosocket` for the line tests, and what they ask of it."""
from __future__ import annotations

import atexit
import functools
import os
import re
import select
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
IVR = Path(sys.executable).parent / "ivr"


class RunningServer:
    """A server process; `urls` maps ws:// and tcp:// to what it announced."""

    def __init__(self, var_dir: Path, max_calls: int = 1):
        lines = ["--media-stream", "127.0.0.1:0", "--audiosocket", "127.0.0.1:0", "--max-calls", str(max_calls)]
        self.command = [str(IVR), "serve", "--port", "0", *lines]
        self.var_dir = var_dir
        self.env = dict(os.environ, IVR_VAR=str(var_dir))
        self.log = tempfile.NamedTemporaryFile("w+", prefix="ivr-serve-", suffix=".log", delete=False)
        self.process = subprocess.Popen(self.command, stdout=subprocess.PIPE, stderr=self.log,
                                        env=self.env, cwd=ROOT)
        self.urls: dict[str, str] = {}
        said, deadline = "", time.monotonic() + 180
        while len(self.urls) < 2 and time.monotonic() < deadline and self.process.poll() is None:
            if select.select([self.process.stdout], [], [], 1.0)[0]:
                said += os.read(self.process.stdout.fileno(), 4096).decode()
                self.urls = {scheme: f"{scheme}://{url}" for scheme, url in re.findall(r"\b(ws|tcp)://(\S+)\n", said)}
        if len(self.urls) < 2:
            self.stop()
            raise RuntimeError(f"{' '.join(self.command)} did not start:\n{self.log_text()[-3000:]}")

    @property
    def media_stream_url(self) -> str:
        return self.urls["ws"]

    @property
    def audiosocket_address(self) -> tuple[str, int]:
        host, port = self.urls["tcp"][len("tcp://"):].rsplit(":", 1)
        return host.strip("[]"), int(port)

    @property
    def pid(self) -> int:
        return self.process.pid

    def rss_kib(self) -> int:
        status = Path(f"/proc/{self.pid}/status").read_text()
        return int(re.search(r"VmRSS:\s+(\d+) kB", status).group(1))

    def log_text(self) -> str:
        self.log.flush()
        return Path(self.log.name).read_text()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process.stdout.close()
        self.log.close()
        Path(self.log.name).unlink(missing_ok=True)


_SHARED: dict[str, RunningServer] = {}


def shared_server(tmp_path_factory) -> RunningServer:
    """One server for every line test in this pytest run (one call at a time), on its own seeded var/."""
    if "server" not in _SHARED:
        from conftest import ivr_command

        var = tmp_path_factory.mktemp("lines-var")
        seeded = ivr_command("db", "seed", env={"IVR_VAR": str(var)})
        assert seeded.returncode == 0, seeded.stderr
        _SHARED["server"] = RunningServer(var)
        atexit.register(_SHARED["server"].stop)
    return _SHARED["server"]


def record(server: RunningServer, call_id: str, timeout: float = 20.0) -> dict:
    """The call's record once the call has ended and the server stored it."""
    from ivr.config import Settings
    from ivr.records import UnknownCall, open_records

    deadline = time.monotonic() + timeout
    with open_records(Settings.from_env({"IVR_VAR": str(server.var_dir)})) as records:
        while True:
            try:
                return records.get(call_id)
            except UnknownCall:
                if time.monotonic() > deadline:
                    raise
            time.sleep(0.2)


@functools.lru_cache(maxsize=None)
def caller_says(text: str):
    """What a caller says, from flite's slt voice, as 8 kHz audio (what a phone line carries)."""
    from ivr.audio.pcm import read_wav

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "said.wav"
        subprocess.run(["flite", "-voice", "slt", "-t", text, "-o", str(path)], check=True)
        return read_wav(path, 8000)
