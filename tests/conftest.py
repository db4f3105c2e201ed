import os
import subprocess
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("RASA_TELEMETRY_ENABLED", "false")

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def speak(tmp_path_factory):
    """Caller speech from espeak-ng as 16-bit mono PCM at `rate` (real audio, made on the spot)."""
    from ivr.audio.pcm import read_wav

    folder = tmp_path_factory.mktemp("speech")

    def render(text: str, rate: int = 16000, voice: str = "en-us"):
        path = folder / f"{abs(hash((text, voice)))}.wav"
        subprocess.run(["espeak-ng", "-v", voice, "-w", str(path), text], check=True)
        return read_wav(path, rate)

    return render
