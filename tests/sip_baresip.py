"""A real SIP phone for the tests: Debian's baresip, headless, driven over its ctrl_tcp socket.

It speaks a WAV file as its microphone (aufile; the call ends when the file does), hears through
ALSA's null device and keeps what it heard as a WAV (sndfile), sends keys as RFC 4733 events and
can answer by itself (an agent's phone).
"""
from __future__ import annotations

import json
import queue
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import Iterator, Optional

import pytest

from ivr.audio.pcm import read_wav, write_wav
from ivr.events import AudioChunk
from tests.sip_server import end_process

WAV_HEADER = 44  # sndfile's dumps: plain 16-bit PCM WAV

CONFIG = """\
poll_method\t\tpoll
sip_listen\t\t127.0.0.1:{sip_port}
audio_player\t\talsa,null
audio_alert\t\talsa,null
audio_source\t\taufile,{source}
audio_path\t\t/usr/share/baresip
ausrc_srate\t\t8000
auplay_srate\t\t8000
ausrc_channels\t\t1
auplay_channels\t\t1
rtp_ports\t\t{rtp_ports}
module_path\t\t/usr/lib/baresip/modules
module\t\t\tg711.so
module\t\t\taufile.so
module\t\t\talsa.so
module\t\t\tsndfile.so
module_app\t\taccount.so
module_app\t\tmenu.so
module_app\t\tctrl_tcp.so
ctrl_tcp_listen\t\t127.0.0.1:{ctrl_port}
snd_path\t\t{recordings}
"""


def available() -> bool:
    return shutil.which("baresip") is not None


def free_port(kind: int = socket.SOCK_DGRAM) -> int:
    with socket.socket(socket.AF_INET, kind) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module", autouse=True)
def baresip_installed():
    """Imported by every test module that rings real phones (autouse there)."""
    if not available():  # a missing phone is a failure to set up, never a quietly skipped test
        pytest.fail("baresip is not installed: run `make setup` (apt-get install baresip)", pytrace=False)


def agent1_with_a_phone(env: dict, password: str) -> int:
    """`ivr db seed` the install in `env` and add agent1 (skills en, billing) with a phone at
    sip:agent1@127.0.0.1:<port>, as an operator would; returns the port for the agent's baresip."""
    from tests.conftest import ivr_command

    seeded = ivr_command("db", "seed", env=env)
    assert seeded.returncode == 0, seeded.stderr
    agent_port = free_port()
    added = ivr_command("agents", "add", "agent1", "--skills", "en,billing", "--sip",
                        f"sip:agent1@127.0.0.1:{agent_port}", "--password-stdin", env=env, input=password + "\n")
    assert added.returncode == 0, added.stderr
    return agent_port


class Baresip:
    def __init__(self, folder: Path, source: Path, user: str = "caller", auto_answer: bool = False,
                 sip_port: Optional[int] = None, rtp_ports: str = "20000-29999"):
        self.folder, self.user = Path(folder), user
        self.sip_port, self.ctrl_port = sip_port or free_port(), free_port(socket.SOCK_STREAM)
        self.recordings = self.folder / "heard"
        self.recordings.mkdir(parents=True, exist_ok=True)
        (self.folder / "config").write_text(CONFIG.format(
            sip_port=self.sip_port, source=source, rtp_ports=rtp_ports, ctrl_port=self.ctrl_port,
            recordings=self.recordings))
        answer = ";answermode=auto" if auto_answer else ""
        (self.folder / "accounts").write_text(f"<sip:{user}@127.0.0.1:{self.sip_port}>;regint=0{answer}\n")
        self.events: "queue.Queue[dict]" = queue.Queue()
        self._responses: "queue.Queue[dict]" = queue.Queue()
        self._log = open(self.folder / "baresip.log", "wb")
        self._process = subprocess.Popen(["baresip", "-f", str(self.folder)], stdin=subprocess.DEVNULL,
                                         stdout=self._log, stderr=subprocess.STDOUT)
        self._socket = self._connect()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    @property
    def uri(self) -> str:
        return f"sip:{self.user}@127.0.0.1:{self.sip_port}"

    def _connect(self) -> socket.socket:
        deadline = time.monotonic() + 10
        while True:
            try:
                return socket.create_connection(("127.0.0.1", self.ctrl_port), timeout=1)
            except OSError:
                if time.monotonic() > deadline or self._process.poll() is not None:
                    raise RuntimeError(f"baresip did not start: {self.log()[-2000:]}")
                time.sleep(0.1)

    def _read(self) -> None:
        """Netstrings of JSON from ctrl_tcp: responses to commands and events (calls ringing, ending...)."""
        buffer = b""
        self._socket.settimeout(None)
        while True:
            try:
                data = self._socket.recv(65536)
            except OSError:
                return
            if not data:
                return
            buffer += data
            while b":" in buffer:
                length, _, rest = buffer.partition(b":")
                if len(rest) < int(length) + 1:
                    break
                message = json.loads(rest[:int(length)])
                buffer = rest[int(length) + 1:]
                (self._responses if message.get("response") else self.events).put(message)

    def command(self, name: str, params: str = "", timeout: float = 5) -> dict:
        body = json.dumps({"command": name, "params": params, "token": name}).encode()
        self._socket.sendall(b"%d:%s," % (len(body), body))
        return self._responses.get(timeout=timeout)

    def dial(self, uri: str) -> None:
        self.command("dial", uri)

    def send_keys(self, keys: str) -> None:
        """Keys pressed during the call, sent as RFC 4733 telephone-events."""
        for key in keys:
            self.command("sndcode", key)
            time.sleep(0.25)

    def speak(self, wav: Path) -> None:
        """From now on the microphone plays this file (the call ends when it does)."""
        self.command("ausrc", f"aufile,{wav}")

    def hang_up(self) -> None:
        self.command("hangup")

    def wait_for(self, *kinds: str, timeout: float = 30) -> dict:
        """The next event of one of these types (CALL_ESTABLISHED, CALL_CLOSED, CALL_INCOMING ...)."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"baresip {self.user}: no {kinds} within {timeout} s; log: {self.log()[-3000:]}")
            try:
                event = self.events.get(timeout=left)
            except queue.Empty:
                continue
            if event.get("type") in kinds:
                return event

    def hearing(self) -> bytes:
        """What the phone has heard so far in its current call: sndfile writes the dump as audio comes."""
        dumps = sorted(self.recordings.glob("dump-*-dec.wav"))
        return dumps[-1].read_bytes()[WAV_HEADER:] if dumps else b""

    def wait_for_the_bot_to_finish(self, quiet: float = 1.0, timeout: float = 40) -> float:
        """Once the bot has said something and then been quiet for `quiet` seconds: its prompt is over.
        Returns where in the call (seconds) it ended."""
        from tests.conftest import until_the_bot_has_spoken

        return until_the_bot_has_spoken(self.hearing, 8000, quiet, timeout, who=f"baresip {self.user}")

    def heard(self) -> Optional[AudioChunk]:
        """What the phone heard in its last call (the decoded audio), once the call is over."""
        dumps = sorted(self.recordings.glob("dump-*-dec.wav"))
        return read_wav(dumps[-1]) if dumps else None

    def log(self) -> str:
        self._log.flush()
        return (self.folder / "baresip.log").read_text(errors="replace")

    def stop(self) -> None:
        try:
            self._socket.close()
        finally:
            end_process(self._process, wait=5)
            self._log.close()


def phone_voice(folder: Path, name: str, *parts) -> tuple[Path, list[float]]:
    """A caller's (or agent's) side of a call as an 8 kHz WAV for a phone's microphone: flite sentences and
    seconds of silence, in order. Returns the file and when (in seconds) each part ends."""
    pcm, ends = b"", []
    for index, part in enumerate(parts):
        if isinstance(part, str):
            wide, narrow = folder / f"{name}-{index}.wav", folder / f"{name}-{index}-8k.wav"
            subprocess.run(["flite", "-voice", "slt", "-t", part, "-o", str(wide)], check=True)
            subprocess.run(["sox", str(wide), "-r", "8000", "-c", "1", "-b", "16", str(narrow)], check=True)
            pcm += read_wav(narrow).pcm
        else:
            pcm += bytes(int(part * 8000) * 2)
        ends.append(len(pcm) / 16000)
    path = folder / f"{name}.wav"
    write_wav(path, AudioChunk(pcm, 8000))
    return path, ends


class Phones:
    """The phones one test starts, each in its own folder, all stopped when the test ends (the `phones` fixture):
    phones(user, microphone WAV, **Baresip options)."""

    def __init__(self, folder: Path):
        self.folder, self.started = folder, []

    def __call__(self, user: str, source: Path, **options) -> Baresip:
        self.started.append(Baresip(self.folder / user, source, user=user, **options))
        return self.started[-1]

    def stop(self) -> None:
        for each in self.started:
            each.stop()


@pytest.fixture
def phones(tmp_path) -> Iterator[Phones]:
    """Imported by the test modules that use it."""
    started = Phones(tmp_path)
    yield started
    started.stop()
