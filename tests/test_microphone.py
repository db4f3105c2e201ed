"""The live path: PulseAudio as the sound card, `ivr call` on its default microphone and speaker.

Caller speech is played into a null sink whose monitor is the default source (the "microphone");
the bot's speech goes to another null sink, recorded from its monitor.
"""
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import wave
from pathlib import Path

import numpy as np
import pytest

from conftest import ROOT, until_the_bot_has_spoken, voiced_seconds


def pactl(*args: str) -> str:
    return subprocess.run(["pactl", *args], check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture
def sound_card():
    """A private PulseAudio server with a virtual microphone (sink `caller`) and speaker (sink `bot`)."""
    if not shutil.which("pulseaudio"):
        pytest.fail("pulseaudio is not installed: run `make setup`")
    if subprocess.run(["pulseaudio", "--check"]).returncode != 0:
        subprocess.run(["pulseaudio", "-D", "--exit-idle-time=-1"], check=True, capture_output=True)
        for _ in range(50):
            if subprocess.run(["pulseaudio", "--check"]).returncode == 0:
                break
            time.sleep(0.1)
    modules = [pactl("load-module", "module-null-sink", f"sink_name={name}") for name in ("caller", "bot")]
    pactl("set-default-source", "caller.monitor")
    pactl("set-default-sink", "bot")
    yield
    for module in modules:
        subprocess.run(["pactl", "unload-module", module])


def lines_of(process: subprocess.Popen) -> "queue.Queue[str]":
    out: "queue.Queue[str]" = queue.Queue()
    threading.Thread(target=lambda: [out.put(line) for line in process.stdout], daemon=True).start()
    return out


def wait_for(out: "queue.Queue[str]", text: str, seconds: float, seen: list) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            line = out.get(timeout=0.5)
        except queue.Empty:
            continue
        seen.append(line)
        if text in line.lower():
            return True
    return False


def test_ivr_call_hears_the_microphone_and_answers_on_the_speaker(sound_card, tmp_path, trained_model):
    caller_wav = tmp_path / "caller.wav"
    subprocess.run(["flite", "-voice", "slt", "-t", "I want to speak to an agent please", "-o", str(caller_wav)], check=True)
    bot_wav = tmp_path / "bot.wav"
    speaker = subprocess.Popen(["parec", "-d", "bot.monitor", "--file-format=wav", "--channels=1",
                                "--rate=16000", "--format=s16le", str(bot_wav)])
    call = subprocess.Popen([str(Path(sys.executable).parent / "ivr"), "call"], cwd=ROOT, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=dict(os.environ))
    seen: list[str] = []
    try:
        out = lines_of(call)
        assert wait_for(out, "bot:", 240, seen), f"no greeting; stderr: {call.stderr.read() if call.poll() is not None else ''}"
        until_the_bot_has_spoken(lambda: _recorded(bot_wav), 16000, who="ivr call")  # the greeting, to its end
        subprocess.run(["paplay", "-d", "caller", str(caller_wav)], check=True)
        assert wait_for(out, "caller:", 30, seen), seen
        assert wait_for(out, "agent", 30, seen), seen
        assert wait_for(out, "in line", 30, seen), seen  # queued for a person: place in line, then hold music
        call.send_signal(signal.SIGINT)  # the caller hangs up while waiting
        assert wait_for(out, "escalated", 60, seen), seen
        call.wait(timeout=30)
    finally:
        if call.poll() is None:
            call.terminate()
        speaker.terminate()
        speaker.wait()
    heard = next(line for line in seen if line.startswith("caller:"))
    assert "agent" in heard.lower()
    assert call.returncode == 0
    assert re.search(r"escalated \(caller_request\); queue entry \d+: abandoned", seen[-1]), seen[-1]

    with wave.open(str(bot_wav)) as wav:
        rate, pcm = wav.getframerate(), wav.readframes(wav.getnframes())
    voiced = voiced_seconds(pcm, rate)
    level = np.abs(np.frombuffer(pcm, "<i2")).max()
    assert voiced > 3.0 and level > 1000  # the greeting and the transfer prompt reached the speaker as speech


@pytest.fixture
def loudspeaker(sound_card):
    """The bot's speaker leaks into the caller's microphone, 60 ms late, as on a laptop."""
    module = pactl("load-module", "module-loopback", "source=bot.monitor", "sink=caller", "latency_msec=60")
    yield
    subprocess.run(["pactl", "unload-module", module])


def live_call(*flags: str) -> subprocess.Popen:
    return subprocess.Popen([str(Path(sys.executable).parent / "ivr"), "call", *flags], cwd=ROOT, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=dict(os.environ))


def test_the_bot_never_hears_its_own_voice_from_the_loudspeaker(loudspeaker, tmp_path, trained_model):
    caller_wav = tmp_path / "caller.wav"
    subprocess.run(["flite", "-voice", "slt", "-t", "I want to speak to an agent please", "-o", str(caller_wav)], check=True)
    call, seen = live_call(), []
    try:
        out = lines_of(call)
        assert wait_for(out, "bot:", 240, seen), seen
        heard_itself = wait_for(out, "caller:", 10, seen)  # the greeting plays and echoes back meanwhile
        assert not heard_itself, f"the bot took its own echo for the caller: {seen}"
        subprocess.run(["paplay", "-d", "caller", str(caller_wav)], check=True)
        assert wait_for(out, "caller:", 30, seen), seen
        assert wait_for(out, "in line", 30, seen), seen
        time.sleep(8)  # a fixed window to watch in: place in line and hold music echo back meanwhile
        call.send_signal(signal.SIGINT)
        assert wait_for(out, "escalated", 60, seen), seen
        call.wait(timeout=30)
    finally:
        if call.poll() is None:
            call.terminate()
    heard = [line for line in seen if line.startswith("caller:")]
    assert len(heard) == 1 and "agent" in heard[0].lower(), heard


def test_without_echo_cancelling_the_loudspeaker_really_leaks(loudspeaker, trained_model):
    """The check on the test above: this room does echo, so its quiet is the canceller's work."""
    call, seen = live_call("--no-echo-cancel"), []
    try:
        out = lines_of(call)
        assert wait_for(out, "bot:", 240, seen), seen
        assert wait_for(out, "caller:", 15, seen), f"no echo reached the microphone: {seen}"
    finally:
        call.terminate()
        call.wait(timeout=30)
    # Nobody spoke: whatever the bot took for the caller (Whisper renders its echo as "hello?" or
    # "the law") was its own voice.
    assert any(line.startswith("caller:") for line in seen)


def children_of(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


@pytest.mark.parametrize("how", ["terminate", "kill"])
def test_a_call_ended_from_outside_leaves_nothing_behind(sound_card, trained_model, how):
    """The dialog's actions run inside `ivr call` (there used to be an action server child to orphan):
    a live call has no helper process, and ending it from outside ends everything."""
    call, seen = live_call(), []
    out = lines_of(call)
    assert wait_for(out, "bot:", 240, seen), seen
    assert children_of(call.pid) == [], "ivr call started a helper process"
    getattr(call, how)()
    call.wait(timeout=30)  # it ends (TimeoutExpired otherwise), and there was nothing else to end


def _recorded(wav: Path) -> bytes:
    """What parec has written of the speaker so far (16-bit PCM after the WAV header)."""
    data = wav.read_bytes() if wav.exists() else b""
    found = data.find(b"data")
    return data[found + 8:] if found >= 0 else b""
