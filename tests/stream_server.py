"""A real `ivr serve --media-stream --audiosocket` for the line tests, and what they ask of it."""
from __future__ import annotations

import atexit
import functools
import os
import re
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from ivr.tools.bench_calls import Server


class RunningServer(Server):
    """`ivr serve --media-stream --audiosocket`, one call at a time, on its own var/; what the tests ask of it."""

    def __init__(self, var_dir: Path, max_calls: int = 1):
        super().__init__(["--media-stream", "127.0.0.1:0", "--audiosocket", "127.0.0.1:0", "--max-calls", str(max_calls)],
                         env=dict(os.environ, IVR_VAR=str(var_dir)))
        self.var_dir = var_dir
        self.start(("ws", "tcp"))

    @property
    def media_stream_url(self) -> str:
        return self.urls["ws"]

    @property
    def audiosocket_address(self) -> tuple[str, int]:
        host, port = self.urls["tcp"][len("tcp://"):].rsplit(":", 1)
        return host.strip("[]"), int(port)

    def rss_kib(self) -> int:
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        return int(re.search(r"VmRSS:\s+(\d+) kB", status).group(1))


BARGE_IN_LIMIT = 0.3  # caller speech over a prompt stops the bot's audio within this (seconds from the voice)
_SHARED: dict[str, RunningServer] = {}


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> RunningServer:
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
