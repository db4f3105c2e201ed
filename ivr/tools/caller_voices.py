"""Synthetic callers for the simulator and tests: espeak-ng, flite and festival voices.

A voice is named `engine:voice` (a bare name means espeak-ng); `rate` is words per minute.
"""
from __future__ import annotations

import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from ivr.audio.pcm import read_wav
from ivr.events import AudioChunk

NATURAL_WPM = 170  # flite's and festival's own pace, for turning a rate into a stretch factor
FESTIVAL_VOICES = Path("/usr/share/festival/voices")


def installed_voices() -> dict[str, list[str]]:
    return {"espeak": _espeak_voices(), "flite": _flite_voices(), "festival": _festival_voices()}


def _espeak_voices() -> list[str]:
    if not shutil.which("espeak-ng"):
        return []
    listing = subprocess.run(["espeak-ng", "--voices"], capture_output=True, text=True).stdout.splitlines()[1:]
    return sorted({line.split()[1] for line in listing if len(line.split()) > 1})


def _flite_voices() -> list[str]:
    if not shutil.which("flite"):
        return []
    listing = subprocess.run(["flite", "-lv"], capture_output=True, text=True).stdout
    return listing.split(":", 1)[-1].split()


def _festival_voices() -> list[str]:
    if not shutil.which("text2wave"):
        return []
    return sorted(p.name for p in FESTIVAL_VOICES.glob("*/*") if p.is_dir())


@dataclass(frozen=True)
class CallerVoice:
    engine: str
    name: str

    def speak(self, text: str, rate: Optional[int] = None) -> AudioChunk:
        with tempfile.TemporaryDirectory(prefix="ivr-caller-") as folder:
            out = Path(folder) / "caller.wav"
            subprocess.run(self._command(text, rate, out), check=True, capture_output=True,
                           input=text if self.engine == "festival" else None, text=True)
            return read_wav(out)

    def _command(self, text: str, rate: Optional[int], out: Path) -> list[str]:
        stretch = NATURAL_WPM / rate if rate else 1.0
        if self.engine == "espeak":
            return ["espeak-ng", "-v", self.name, *(["-s", str(rate)] if rate else []), "-w", str(out), text]
        if self.engine == "flite":
            return ["flite", "-voice", self.name, "--setf", f"duration_stretch={stretch:.3f}", "-t", text, "-o", str(out)]
        return ["text2wave", "-eval", f"(voice_{self.name})", "-eval",
                f"(Parameter.set 'Duration_Stretch {stretch:.3f})", "-o", str(out)]


def parse_voice(spec: str) -> CallerVoice:
    engine, _, name = spec.partition(":") if ":" in spec else ("espeak", "", spec)
    voices = installed_voices()
    if engine not in voices:
        raise ValueError(f"unknown caller voice engine {engine!r} in {spec!r}; engines: {', '.join(voices)}")
    base = name.split("+")[0]  # espeak-ng variants: en-us+f3
    if base not in voices[engine] and name not in voices[engine]:
        shown = ", ".join(voices[engine][:40]) or f"none ({engine} is not installed: run `make setup`)"
        raise ValueError(f"unknown {engine} voice {name!r}; installed: {shown}")
    return CallerVoice(engine, name)
