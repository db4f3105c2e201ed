"""The machine calibration every `ivr bench …` prints first: how fast this machine runs Whisper tiny.en.

Benchmark figures in milliseconds only compare across machines once each is divided by what the
machine does with one fixed piece of work. The work is the bundled Whisper tiny.en decoding one
fixed clip that ships with the project (data/calibration.wav, rendered once with
`flite -voice slt -t "I would like to check my account balance, please." -o calibration.wav`:
16 kHz mono, 3.1 s), timed as the median of 5 decodes after one warm-up.

The decode options are fixed here rather than taken from the product's recognizer (ivr/asr/
whisper_engine.py): when the product changes its window or threads, the calibration must not
move with it, or two runs of different commits on one machine would calibrate differently.
"""
from __future__ import annotations

import os
import platform
import statistics
import time
from pathlib import Path
from typing import Any, Optional

import numpy as np

CLIP = Path(__file__).parent / "data" / "calibration.wav"
RUNS = 5
# The product's own settings at the time the calibration was fixed (int8 on 2 threads, greedy):
# a machine's figure then says how fast it runs the recognizer the way the product does.
THREADS = 2
OPTIONS = dict(language="en", beam_size=1, temperature=0.0, without_timestamps=True,
               condition_on_previous_text=False, vad_filter=False, chunk_length=30)


def machine() -> dict[str, Any]:
    """What the figure was measured on: CPU model, the cores this process may use, Python."""
    return {"cpu": _cpu_model(), "cores": _cores(), "python": platform.python_version()}


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):  # x86; ARM kernels name no model here
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def _cores() -> int:
    """The cores this process may run on: in a container or under taskset that is fewer than the host's."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def measure(runs: int = RUNS) -> dict[str, Any]:
    """Decode the clip once to warm up, then `runs` times; the median in ms and the machine."""
    from faster_whisper import WhisperModel

    from ivr.asr.whisper_engine import bundled_model, verify
    from ivr.audio.pcm import WIDEBAND_RATE, read_wav

    folder = bundled_model()
    verify(folder)  # a damaged or different model would time different work
    # Its own instance, not the product's shared one: freed when this returns, so it does not sit
    # beside the bot's in memory, and the product's model settings cannot change what is timed.
    model = WhisperModel(str(folder), device="cpu", compute_type="int8", cpu_threads=THREADS)
    clip = read_wav(CLIP, WIDEBAND_RATE)
    samples = np.frombuffer(clip.pcm, "<i2").astype(np.float32) / 32768
    heard = _decode(model, samples)  # the warm-up: first-call allocations are not the machine's speed
    times = []
    for _ in range(runs):
        began = time.perf_counter()
        _decode(model, samples)
        times.append(time.perf_counter() - began)
    # The fastest and slowest decode too: a wide spread says something else was using the cores.
    return {"decode_ms": round(statistics.median(times) * 1000, 1), "runs": runs,
            "fastest_ms": round(min(times) * 1000, 1), "slowest_ms": round(max(times) * 1000, 1),
            "clip_seconds": round(clip.seconds, 2), "model": "whisper tiny.en", "heard": heard, **machine()}


def _decode(model, samples: np.ndarray) -> str:
    segments, _ = model.transcribe(samples, **OPTIONS)
    return " ".join(s.text.strip() for s in segments)  # the segments are lazy: decoding happens here


def first(enabled: bool, as_json: bool) -> Optional[dict[str, Any]]:
    """Calibrate before a benchmark loads anything, so nothing else competes for the cores; the line
    is printed at once (not with the JSON, which must stay one document on stdout)."""
    if not enabled:
        return None
    calibration = measure()
    if not as_json:
        print(line(calibration), flush=True)
    return calibration


def line(calibration: dict[str, Any]) -> str:
    return (f"calibration: {calibration['model']} decodes the {calibration['clip_seconds']:.1f} s clip in "
            f"{calibration['decode_ms']:.0f} ms (median of {calibration['runs']}, "
            f"{calibration['fastest_ms']:.0f}–{calibration['slowest_ms']:.0f}) on {calibration['cpu']} "
            f"× {calibration['cores']} cores, Python {calibration['python']}")


def relative(seconds: Optional[float], calibration: Optional[dict[str, Any]]) -> Optional[float]:
    """A figure in seconds as a multiple of the calibration decode: what compares across machines."""
    if seconds is None or not calibration:
        return None
    return round(seconds * 1000 / calibration["decode_ms"], 2)
